using IserBlockd.Daemon.Configuration;
using IserBlockd.Iscsi.Transport;
using IserBlockd.Transport.Tcp;

namespace IserBlockd.Daemon.Sessions;

/// <summary>Picks the connection transport for a node's <see cref="TransportKind"/>.</summary>
public static class TransportSelector
{
    /// <summary>The transport to use, and why (for the log).</summary>
    public static (IIscsiTransport Transport, string Reason) Select(TransportKind kind) => kind switch
    {
        TransportKind.Tcp => (new TcpIscsiTransport(), "transport tcp as configured"),
        TransportKind.Iser => throw new IserBlockd.Iscsi.IscsiException(
            "transport \"iser\" is not available in this build yet (the iSER transport is still being written); use \"tcp\" or \"auto\""),
        _ => (new TcpIscsiTransport(), "transport auto: TCP (this build has no iSER transport yet)"),
    };
}
