using System.Buffers.Binary;

namespace IserBlockd.BlockDev.Nbd.Protocol;

/// <summary>
/// Data of NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT: 32-bit export name length, the export
/// name, a 32-bit query count, then that many queries, each a 32-bit length and a string
/// ("base:allocation", or "base:" for every context of that namespace when listing).
/// </summary>
public sealed record NbdMetaContextRequest(string ExportName, IReadOnlyList<string> Queries)
{
    public int GetSize() => 8 + NbdString.GetByteCount(ExportName) + Queries.Sum(q => 4 + NbdString.GetByteCount(q));

    public int Write(Span<byte> destination)
    {
        var nameLength = NbdString.Write(ExportName, destination[4..]);
        BinaryPrimitives.WriteUInt32BigEndian(destination, (uint)nameLength);
        var position = 4 + nameLength;
        BinaryPrimitives.WriteUInt32BigEndian(destination[position..], (uint)Queries.Count);
        position += 4;
        foreach (var query in Queries)
        {
            var length = NbdString.Write(query, destination[(position + 4)..]);
            BinaryPrimitives.WriteUInt32BigEndian(destination[position..], (uint)length);
            position += 4 + length;
        }
        return position;
    }

    /// <summary>Parses the option data; a malformed request is an <see cref="NbdProtocolException"/>
    /// (answered with NBD_REP_ERR_INVALID).</summary>
    public static NbdMetaContextRequest Parse(ReadOnlySpan<byte> data)
    {
        var name = ReadString(ref data, "export name");
        if (data.Length < 4)
            throw new NbdProtocolException("Meta context request has no query count.");
        var count = BinaryPrimitives.ReadUInt32BigEndian(data);
        data = data[4..];
        if (count > (uint)data.Length / 4)
            throw new NbdProtocolException($"{count} meta context queries do not fit in {data.Length} bytes.");
        var queries = new string[count];
        for (var i = 0; i < queries.Length; i++)
            queries[i] = ReadString(ref data, "query");
        if (!data.IsEmpty)
            throw new NbdProtocolException($"{data.Length} bytes follow the last meta context query.");
        return new NbdMetaContextRequest(name, queries);
    }

    private static string ReadString(ref ReadOnlySpan<byte> data, string what)
    {
        if (data.Length < 4)
            throw new NbdProtocolException($"Meta context request ends before the {what} length.");
        var length = BinaryPrimitives.ReadUInt32BigEndian(data);
        if (length > (uint)data.Length - 4)
            throw new NbdProtocolException($"The {what} length {length} does not fit in {data.Length - 4} bytes.");
        var value = NbdString.Read(data.Slice(4, (int)length));
        data = data[(4 + (int)length)..];
        return value;
    }
}
