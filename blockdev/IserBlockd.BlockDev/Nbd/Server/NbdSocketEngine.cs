namespace IserBlockd.BlockDev.Nbd;

/// <summary>What drives the server's sockets.</summary>
public enum NbdSocketEngine
{
    /// <summary>The server's own edge-triggered epoll loops (<see cref="Transport.Epoll.EpollSocketTransport"/>):
    /// socket readiness runs the NBD code on the loop thread, with no thread-pool hop.</summary>
    Epoll,

    /// <summary>The runtime's socket engine (<see cref="Transport.SocketTransport"/>); portable, and as fast
    /// as <see cref="Epoll"/> only with <c>DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1</c>.</summary>
    Runtime,
}
