namespace IserBlockd.Iscsi.Scsi;

/// <summary>Operation codes of the commands this initiator issues (SPC-4, SBC-3).</summary>
public static class ScsiOpcode
{
    public const byte TestUnitReady = 0x00;
    public const byte Inquiry = 0x12;
    public const byte ReadCapacity10 = 0x25;
    public const byte Read10 = 0x28;
    public const byte Write10 = 0x2a;
    public const byte SynchronizeCache10 = 0x35;
    public const byte Unmap = 0x42;
    public const byte Read16 = 0x88;
    public const byte PreFetch16 = 0x90;
    public const byte Write16 = 0x8a;
    public const byte SynchronizeCache16 = 0x91;
    public const byte WriteSame16 = 0x93;
    public const byte ServiceActionIn16 = 0x9e;
    public const byte ReportLuns = 0xa0;
    public const byte ReadCapacity16ServiceAction = 0x10;

    /// <summary>The command's name for messages, e.g. "READ(16)".</summary>
    public static string Name(ReadOnlySpan<byte> cdb)
    {
        if (cdb.IsEmpty) return "empty CDB";
        return cdb[0] switch
        {
            TestUnitReady => "TEST UNIT READY",
            Inquiry => (cdb.Length > 1 && (cdb[1] & 1) != 0) ? $"INQUIRY VPD 0x{cdb[2]:x2}" : "INQUIRY",
            ReadCapacity10 => "READ CAPACITY(10)",
            Read10 => "READ(10)",
            Write10 => "WRITE(10)",
            SynchronizeCache10 => "SYNCHRONIZE CACHE(10)",
            Unmap => "UNMAP",
            Read16 => "READ(16)",
            Write16 => "WRITE(16)",
            SynchronizeCache16 => "SYNCHRONIZE CACHE(16)",
            WriteSame16 => "WRITE SAME(16)",
            PreFetch16 => "PRE-FETCH(16)",
            ServiceActionIn16 when cdb.Length > 1 && (cdb[1] & 0x1f) == LbaStatus.ServiceAction => "GET LBA STATUS",
            ServiceActionIn16 when cdb.Length > 1 && (cdb[1] & 0x1f) == ReadCapacity16ServiceAction => "READ CAPACITY(16)",
            ReportLuns => "REPORT LUNS",
            var op => $"opcode 0x{op:x2}",
        };
    }
}
