using System.Buffers.Binary;

namespace IserBlockd.Iscsi.Scsi;

/// <summary>
/// Logical unit numbers as 8-byte SAM LUN structures: LUN &lt; 256 in peripheral device addressing, &lt; 16384 in
/// flat space addressing, anything else as the 64-bit value Linux uses (int_to_scsilun).
/// </summary>
public static class LunAddress
{
    public static ulong Encode(ulong lun)
    {
        if (lun < 256) return lun << 48;
        if (lun < 16384) return (0x4000UL | lun) << 48;
        // Linux: each 16-bit level of the integer becomes the next 2 bytes of the structure.
        ulong result = 0;
        for (var level = 0; level < 4; level++)
            result |= ((lun >> (16 * level)) & 0xffff) << (48 - 16 * level);
        return result;
    }

    public static ulong Decode(ulong structure)
    {
        var first = (ushort)(structure >> 48);
        if ((structure & 0x0000_ffff_ffff_ffff) == 0)
        {
            var method = first >> 14;
            if (method == 0 && (first & 0x3f00) == 0) return (ulong)(first & 0xff);
            if (method == 1) return (ulong)(first & 0x3fff);
        }
        ulong lun = 0;
        for (var level = 0; level < 4; level++)
            lun |= ((structure >> (48 - 16 * level)) & 0xffff) << (16 * level);
        return lun;
    }

    /// <summary>Parses REPORT LUNS parameter data into LUN numbers.</summary>
    public static IReadOnlyList<ulong> ParseReportLuns(ReadOnlySpan<byte> data)
    {
        if (data.Length < 8) throw new IscsiProtocolException($"REPORT LUNS data is {data.Length} bytes, at least 8 expected");
        var listLength = BinaryPrimitives.ReadUInt32BigEndian(data);
        var entries = data[8..];
        var count = (int)Math.Min(listLength / 8, (uint)(entries.Length / 8));
        var luns = new ulong[count];
        for (var i = 0; i < count; i++) luns[i] = Decode(BinaryPrimitives.ReadUInt64BigEndian(entries[(i * 8)..]));
        return luns;
    }
}
