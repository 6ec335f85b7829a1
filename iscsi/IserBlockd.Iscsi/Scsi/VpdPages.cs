using System.Buffers.Binary;
using System.Text;

namespace IserBlockd.Iscsi.Scsi;

/// <summary>VPD page codes (SPC-4 §7.8, SBC-3 §6.6).</summary>
public static class VpdPage
{
    public const byte SupportedPages = 0x00;
    public const byte UnitSerialNumber = 0x80;
    public const byte DeviceIdentification = 0x83;
    public const byte BlockLimits = 0xb0;
    public const byte BlockDeviceCharacteristics = 0xb1;
    public const byte LogicalBlockProvisioning = 0xb2;

    /// <summary>The page payload after the 4-byte header, bounded by the PAGE LENGTH field; checks the page code.</summary>
    public static ReadOnlySpan<byte> Payload(ReadOnlySpan<byte> data, byte expectedPage)
    {
        if (data.Length < 4) throw new IscsiProtocolException($"VPD page 0x{expectedPage:x2} is {data.Length} bytes, shorter than its header");
        if (data[1] != expectedPage) throw new IscsiProtocolException($"asked for VPD page 0x{expectedPage:x2}, got 0x{data[1]:x2}");
        var length = BinaryPrimitives.ReadUInt16BigEndian(data[2..]);
        return data.Slice(4, Math.Min(length, data.Length - 4));
    }

    public static IReadOnlyList<byte> ParseSupportedPages(ReadOnlySpan<byte> data) => Payload(data, SupportedPages).ToArray();

    public static string ParseUnitSerialNumber(ReadOnlySpan<byte> data)
        => Encoding.ASCII.GetString(Payload(data, UnitSerialNumber)).TrimEnd('\0').Trim();
}

/// <summary>Designator types of the Device Identification page (SPC-4 §7.8.6).</summary>
public enum DesignatorType : byte
{
    VendorSpecific = 0,
    T10VendorId = 1,
    Eui64 = 2,
    Naa = 3,
    RelativeTargetPort = 4,
    TargetPortGroup = 5,
    LogicalUnitGroup = 6,
    Md5LogicalUnit = 7,
    ScsiNameString = 8,
    ProtocolSpecificPortId = 9,
    Uuid = 10,
}

/// <summary>One designator of VPD page 0x83.</summary>
public sealed record Designator(DesignatorType Type, byte Association, byte CodeSet, byte[] Identifier)
{
    /// <summary>0: the logical unit itself (what a udev-style WWN uses).</summary>
    public bool IdentifiesLogicalUnit => Association == 0;

    /// <summary>Text like udev's: naa.6001405..., eui.0011..., t10.VENDOR..., or the SCSI name string.</summary>
    public override string ToString() => Type switch
    {
        DesignatorType.Naa => "naa." + Convert.ToHexStringLower(Identifier),
        DesignatorType.Eui64 => "eui." + Convert.ToHexStringLower(Identifier),
        DesignatorType.T10VendorId => "t10." + Printable(),
        DesignatorType.ScsiNameString => Printable(),
        _ when CodeSet is 2 or 3 => Printable(),
        _ => $"type{(byte)Type}." + Convert.ToHexStringLower(Identifier),
    };

    private string Printable() => Encoding.UTF8.GetString(Identifier).TrimEnd('\0').Trim();

    public static IReadOnlyList<Designator> ParsePage(ReadOnlySpan<byte> data)
    {
        var payload = VpdPage.Payload(data, VpdPage.DeviceIdentification);
        var list = new List<Designator>();
        while (payload.Length >= 4)
        {
            var length = payload[3];
            if (payload.Length < 4 + length) break;
            list.Add(new Designator((DesignatorType)(payload[1] & 0x0f), (byte)((payload[1] >> 4) & 3), (byte)(payload[0] & 0x0f), payload.Slice(4, length).ToArray()));
            payload = payload[(4 + length)..];
        }
        return list;
    }
}

/// <summary>Block Limits VPD page 0xB0 (SBC-3 §6.6.4). Zero means "not reported".</summary>
public sealed record BlockLimits
{
    public uint MaximumCompareAndWriteLength { get; init; }
    public uint OptimalTransferLengthGranularity { get; init; }
    public uint MaximumTransferLength { get; init; }
    public uint OptimalTransferLength { get; init; }
    public uint MaximumPrefetchLength { get; init; }
    public uint MaximumUnmapLbaCount { get; init; }
    public uint MaximumUnmapBlockDescriptorCount { get; init; }
    public uint OptimalUnmapGranularity { get; init; }
    public uint? UnmapGranularityAlignment { get; init; }
    public ulong MaximumWriteSameLength { get; init; }

    public static BlockLimits Parse(ReadOnlySpan<byte> data)
    {
        var p = VpdPage.Payload(data, VpdPage.BlockLimits);
        return new BlockLimits
        {
            MaximumCompareAndWriteLength = p.Length > 1 ? p[1] : 0u,
            OptimalTransferLengthGranularity = p.Length >= 4 ? BinaryPrimitives.ReadUInt16BigEndian(p[2..]) : 0u,
            MaximumTransferLength = U32(p, 8),
            OptimalTransferLength = U32(p, 12),
            MaximumPrefetchLength = U32(p, 16),
            MaximumUnmapLbaCount = U32(p, 20),
            MaximumUnmapBlockDescriptorCount = U32(p, 24),
            OptimalUnmapGranularity = U32(p, 28),
            UnmapGranularityAlignment = p.Length >= 32 && (p[28] & 0x80) != 0 ? U32(p, 32) & 0x7fff_ffff : null,
            MaximumWriteSameLength = p.Length >= 40 ? BinaryPrimitives.ReadUInt64BigEndian(p[32..]) : 0,
        };
    }

    // Page offsets from SBC-3; the payload starts after the 4-byte page header.
    private static uint U32(ReadOnlySpan<byte> payload, int pageOffset)
        => payload.Length >= pageOffset ? BinaryPrimitives.ReadUInt32BigEndian(payload[(pageOffset - 4)..]) : 0;
}

/// <summary>Logical Block Provisioning VPD page 0xB2 (SBC-3 §6.6.5).</summary>
public sealed record LogicalBlockProvisioning
{
    public byte ThresholdExponent { get; init; }
    /// <summary>LBPU: UNMAP is supported.</summary>
    public bool Unmap { get; init; }
    /// <summary>LBPWS: WRITE SAME(16) with UNMAP is supported.</summary>
    public bool WriteSame16Unmap { get; init; }
    /// <summary>LBPWS10: WRITE SAME(10) with UNMAP is supported.</summary>
    public bool WriteSame10Unmap { get; init; }
    /// <summary>LBPRZ: unmapped blocks read back as zeros.</summary>
    public bool ReadsZeroesAfterUnmap { get; init; }
    public bool AnchorSupported { get; init; }
    /// <summary>0 full/unknown, 1 resource provisioned, 2 thin provisioned.</summary>
    public byte ProvisioningType { get; init; }

    public static LogicalBlockProvisioning Parse(ReadOnlySpan<byte> data)
    {
        var p = VpdPage.Payload(data, VpdPage.LogicalBlockProvisioning);
        if (p.Length < 3) throw new IscsiProtocolException($"Logical Block Provisioning page payload is {p.Length} bytes, at least 3 expected");
        return new LogicalBlockProvisioning
        {
            ThresholdExponent = p[0],
            Unmap = (p[1] & 0x80) != 0,
            WriteSame16Unmap = (p[1] & 0x40) != 0,
            WriteSame10Unmap = (p[1] & 0x20) != 0,
            ReadsZeroesAfterUnmap = (p[1] & 0x04) != 0,
            AnchorSupported = (p[1] & 0x02) != 0,
            ProvisioningType = (byte)(p[2] & 0x07),
        };
    }
}
