using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace IserBlockd.Daemon.Native;

/// <summary>The process on the other end of a connected Unix socket, as the kernel vouches for it (SO_PEERCRED).</summary>
public readonly record struct PeerCredentials(int ProcessId, uint UserId, uint GroupId)
{
    private const int SOL_SOCKET = 1;
    private const int SO_PEERCRED = 17;

    public static PeerCredentials Of(Socket socket)
    {
        Span<byte> ucred = stackalloc byte[12]; // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
        var length = socket.GetRawSocketOption(SOL_SOCKET, SO_PEERCRED, ucred);
        if (length < 12)
            throw new SocketException((int)SocketError.ProtocolNotSupported);
        return new PeerCredentials(
            MemoryMarshal.Read<int>(ucred),
            MemoryMarshal.Read<uint>(ucred[4..]),
            MemoryMarshal.Read<uint>(ucred[8..]));
    }
}
