namespace IserBlockd.Iscsi.ConnectionPort;

/// <summary>A transport could not connect or lost its connection (refused, unreachable, reset, timed out).</summary>
public sealed class IscsiTransportException : IscsiException
{
    public IscsiTransportException(string message, Exception? inner = null) : base(message, inner) { }
}
