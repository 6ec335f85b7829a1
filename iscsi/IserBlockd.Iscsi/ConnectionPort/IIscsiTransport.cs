namespace IserBlockd.Iscsi.ConnectionPort;

/// <summary>
/// The connection port the iSCSI core uses (like Kestrel's transport abstraction, or libiscsi's iscsi_transport
/// in the kernel): a factory of connections to a portal. TCP and iSER implement it in the transport layer;
/// tests use in-memory implementations. The core never touches sockets.
/// </summary>
public interface IIscsiTransport
{
    /// <summary>Short name for logs and configuration: "tcp", "iser".</summary>
    string Name { get; }

    /// <summary>Opens a connection to <paramref name="portal"/>. Failures throw <see cref="IscsiTransportException"/>.</summary>
    ValueTask<IIscsiConnection> ConnectAsync(IscsiPortal portal, CancellationToken cancellationToken);
}
