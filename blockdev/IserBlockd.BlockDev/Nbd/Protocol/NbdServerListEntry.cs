using System.Buffers.Binary;

namespace IserBlockd.BlockDev.Nbd.Protocol;

/// <summary>Data of an NBD_REP_SERVER reply to NBD_OPT_LIST: 32-bit name length, name, then an
/// optional human-readable description filling the rest of the reply.</summary>
public sealed record NbdServerListEntry(string ExportName, string Description)
{
    public int GetSize() => 4 + NbdString.GetByteCount(ExportName) + NbdString.GetByteCount(Description);

    public int Write(Span<byte> destination)
    {
        var nameLength = NbdString.Write(ExportName, destination[4..]);
        BinaryPrimitives.WriteUInt32BigEndian(destination, (uint)nameLength);
        return 4 + nameLength + NbdString.Write(Description, destination[(4 + nameLength)..]);
    }

    public static NbdServerListEntry Parse(ReadOnlySpan<byte> data)
    {
        if (data.Length < 4)
            throw new NbdProtocolException("NBD_REP_SERVER reply is shorter than 4 bytes.");
        var nameLength = BinaryPrimitives.ReadUInt32BigEndian(data);
        if (nameLength > (uint)data.Length - 4)
            throw new NbdProtocolException($"NBD_REP_SERVER name length {nameLength} exceeds the reply.");
        return new NbdServerListEntry(
            NbdString.Read(data.Slice(4, (int)nameLength)),
            NbdString.Read(data[(4 + (int)nameLength)..]));
    }
}
