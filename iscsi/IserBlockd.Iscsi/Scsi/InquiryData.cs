using System.Text;

namespace IserBlockd.Iscsi.Scsi;

/// <summary>Standard INQUIRY data (SPC-4 §6.6.2): device type and identification strings.</summary>
public sealed record InquiryData
{
    public byte PeripheralQualifier { get; init; }
    public byte PeripheralDeviceType { get; init; }
    public bool Removable { get; init; }
    public byte Version { get; init; }
    public bool HierarchicalSupport { get; init; }
    public byte TargetPortGroupSupport { get; init; }
    public bool ThirdPartyCopy { get; init; }
    public bool Protect { get; init; }
    public bool CommandQueueing { get; init; }
    public string Vendor { get; init; } = "";
    public string Product { get; init; } = "";
    public string Revision { get; init; } = "";

    /// <summary>Peripheral device type 0: a direct-access block device (disk).</summary>
    public bool IsDirectAccessBlockDevice => PeripheralDeviceType == 0x00;

    /// <summary>Qualifier 0: the LU is present (3 means no LU at this LUN).</summary>
    public bool IsConnected => PeripheralQualifier == 0;

    public static InquiryData Parse(ReadOnlySpan<byte> data)
    {
        if (data.Length < 5) throw new IscsiProtocolException($"standard INQUIRY data is {data.Length} bytes, at least 5 expected");
        return new InquiryData
        {
            PeripheralQualifier = (byte)(data[0] >> 5),
            PeripheralDeviceType = (byte)(data[0] & 0x1f),
            Removable = (data[1] & 0x80) != 0,
            Version = data[2],
            HierarchicalSupport = (data[3] & 0x10) != 0,
            TargetPortGroupSupport = data.Length > 5 ? (byte)((data[5] >> 4) & 3) : (byte)0,
            ThirdPartyCopy = data.Length > 5 && (data[5] & 0x08) != 0,
            Protect = data.Length > 5 && (data[5] & 0x01) != 0,
            CommandQueueing = data.Length > 7 && (data[7] & 0x02) != 0,
            Vendor = Ascii(data, 8, 8),
            Product = Ascii(data, 16, 16),
            Revision = Ascii(data, 32, 4),
        };
    }

    internal static string Ascii(ReadOnlySpan<byte> data, int offset, int length)
    {
        if (data.Length <= offset) return "";
        var field = data.Slice(offset, Math.Min(length, data.Length - offset));
        var nul = field.IndexOf((byte)0);
        if (nul >= 0) field = field[..nul];
        return Encoding.ASCII.GetString(field).Trim();
    }
}
