using System.Buffers.Binary;

namespace IserBlockd.BlockDev.Nbd.Protocol;

/// <summary>
/// Data of NBD_OPT_INFO and NBD_OPT_GO: 32-bit name length, the export name, a 16-bit count and that
/// many 16-bit information requests.
/// </summary>
public sealed record NbdExportInfoRequest(string ExportName, IReadOnlyList<NbdInfoType> InformationRequests)
{
    public bool Requests(NbdInfoType type) => InformationRequests.Contains(type);

    public int GetSize() => 4 + NbdString.GetByteCount(ExportName) + 2 + 2 * InformationRequests.Count;

    public int Write(Span<byte> destination)
    {
        var nameLength = NbdString.Write(ExportName, destination[4..]);
        BinaryPrimitives.WriteUInt32BigEndian(destination, (uint)nameLength);
        var position = 4 + nameLength;
        BinaryPrimitives.WriteUInt16BigEndian(destination[position..], (ushort)InformationRequests.Count);
        position += 2;
        foreach (var request in InformationRequests)
        {
            BinaryPrimitives.WriteUInt16BigEndian(destination[position..], (ushort)request);
            position += 2;
        }
        return position;
    }

    /// <summary>Parses the option data; a malformed request is an <see cref="NbdProtocolException"/>
    /// (the server answers it with NBD_REP_ERR_INVALID).</summary>
    public static NbdExportInfoRequest Parse(ReadOnlySpan<byte> data)
    {
        if (data.Length < 6)
            throw new NbdProtocolException($"Export information request of {data.Length} bytes is shorter than the minimum of 6.");
        var nameLength = BinaryPrimitives.ReadUInt32BigEndian(data);
        if (nameLength > (uint)data.Length - 6)
            throw new NbdProtocolException($"Export name length {nameLength} does not fit in {data.Length} bytes of option data.");
        var name = NbdString.Read(data.Slice(4, (int)nameLength));
        var rest = data[(4 + (int)nameLength)..];
        var count = BinaryPrimitives.ReadUInt16BigEndian(rest);
        if (rest.Length != 2 + 2 * count)
            throw new NbdProtocolException($"{count} information requests need {2 + 2 * count} bytes, but {rest.Length} remain.");
        var requests = new NbdInfoType[count];
        for (var i = 0; i < count; i++)
            requests[i] = (NbdInfoType)BinaryPrimitives.ReadUInt16BigEndian(rest[(2 + 2 * i)..]);
        return new NbdExportInfoRequest(name, requests);
    }
}
