namespace IserBlockd.BlockDev.Nbd.Protocol;

/// <summary>Handshake flags the server sends after the greeting magic (16 bits).</summary>
[Flags]
public enum NbdHandshakeFlags : ushort
{
    None = 0,
    FixedNewstyle = 1 << 0,
    NoZeroes = 1 << 1,
}

/// <summary>Client flags sent in answer to the server's handshake flags (32 bits).</summary>
[Flags]
public enum NbdClientFlags : uint
{
    None = 0,
    FixedNewstyle = 1 << 0,
    NoZeroes = 1 << 1,
}
