namespace IserBlockd.BlockDev.Nbd.Protocol;

/// <summary>The peer sent bytes that break the NBD protocol (bad magic, inconsistent lengths).</summary>
public sealed class NbdProtocolException(string message) : Exception(message);
