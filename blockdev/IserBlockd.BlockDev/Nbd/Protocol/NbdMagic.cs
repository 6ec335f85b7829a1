namespace IserBlockd.BlockDev.Nbd.Protocol;

/// <summary>The magic numbers of the NBD protocol (doc/proto.md), as they appear big-endian on the wire.</summary>
public static class NbdMagic
{
    /// <summary>"NBDMAGIC", the first 8 bytes a server sends.</summary>
    public const ulong InitPassword = 0x4e42444d41474943;

    /// <summary>"IHAVEOPT": newstyle greeting and the prefix of every option request.</summary>
    public const ulong OptionRequest = 0x49484156454F5054;

    /// <summary>Prefix of every fixed-newstyle option reply.</summary>
    public const ulong OptionReply = 0x3e889045565a9;

    public const uint Request = 0x25609513;
    public const uint SimpleReply = 0x67446698;
    public const uint StructuredReply = 0x668e33ef;
}
