using System.Buffers.Binary;

namespace IserBlockd.Iscsi.Scsi;

/// <summary>READ CAPACITY (10) or (16) parameter data (SBC-3 §5.15, §5.16).</summary>
public sealed record ReadCapacityData
{
    public ulong LastLogicalBlockAddress { get; init; }
    public uint LogicalBlockLength { get; init; }
    public bool ProtectionEnabled { get; init; }
    /// <summary>Logical blocks per physical block, as a power of two.</summary>
    public byte LogicalBlocksPerPhysicalBlockExponent { get; init; }
    /// <summary>LBPME: the LU is thin provisioned (UNMAP/WRITE SAME UNMAP may apply).</summary>
    public bool ProvisioningManagementEnabled { get; init; }
    /// <summary>LBPRZ: unmapped blocks read as zeros.</summary>
    public bool ReadsZeroesAfterUnmap { get; init; }
    public ushort LowestAlignedLogicalBlockAddress { get; init; }

    public ulong BlockCount => LastLogicalBlockAddress + 1;

    public ulong CapacityBytes => BlockCount * LogicalBlockLength;

    public uint PhysicalBlockLength => LogicalBlockLength << LogicalBlocksPerPhysicalBlockExponent;

    public static ReadCapacityData Parse10(ReadOnlySpan<byte> data)
    {
        if (data.Length < 8) throw new IscsiProtocolException($"READ CAPACITY(10) data is {data.Length} bytes, 8 expected");
        return new ReadCapacityData
        {
            LastLogicalBlockAddress = BinaryPrimitives.ReadUInt32BigEndian(data),
            LogicalBlockLength = BinaryPrimitives.ReadUInt32BigEndian(data[4..]),
        };
    }

    public static ReadCapacityData Parse16(ReadOnlySpan<byte> data)
    {
        if (data.Length < 12) throw new IscsiProtocolException($"READ CAPACITY(16) data is {data.Length} bytes, at least 12 expected");
        return new ReadCapacityData
        {
            LastLogicalBlockAddress = BinaryPrimitives.ReadUInt64BigEndian(data),
            LogicalBlockLength = BinaryPrimitives.ReadUInt32BigEndian(data[8..]),
            ProtectionEnabled = data.Length > 12 && (data[12] & 0x01) != 0,
            LogicalBlocksPerPhysicalBlockExponent = data.Length > 13 ? (byte)(data[13] & 0x0f) : (byte)0,
            ProvisioningManagementEnabled = data.Length > 14 && (data[14] & 0x80) != 0,
            ReadsZeroesAfterUnmap = data.Length > 14 && (data[14] & 0x40) != 0,
            LowestAlignedLogicalBlockAddress = data.Length > 15 ? (ushort)(((data[14] & 0x3f) << 8) | data[15]) : (ushort)0,
        };
    }
}
