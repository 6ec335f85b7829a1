using System.Buffers.Binary;

namespace IserBlockd.Iscsi.Scsi;

/// <summary>
/// Decoded sense data, fixed format (response codes 0x70/0x71) or descriptor format (0x72/0x73), SPC-4 §4.5.
/// </summary>
public sealed class SenseData
{
    private SenseData(byte responseCode, SenseKey key, byte asc, byte ascq, ulong? information, byte[] raw)
    {
        ResponseCode = responseCode;
        Key = key;
        AdditionalSenseCode = asc;
        AdditionalSenseCodeQualifier = ascq;
        Information = information;
        Raw = raw;
    }

    public byte ResponseCode { get; }
    public bool IsDescriptorFormat => ResponseCode is 0x72 or 0x73;
    public bool IsDeferred => ResponseCode is 0x71 or 0x73;
    public SenseKey Key { get; }
    public byte AdditionalSenseCode { get; }
    public byte AdditionalSenseCodeQualifier { get; }
    /// <summary>The INFORMATION field when valid (often the first failing LBA).</summary>
    public ulong? Information { get; }
    public byte[] Raw { get; }

    /// <summary>Parses sense bytes; returns null when they are too short or not a known format.</summary>
    public static SenseData? TryParse(ReadOnlySpan<byte> sense)
    {
        if (sense.Length < 2) return null;
        var code = (byte)(sense[0] & 0x7f);
        switch (code)
        {
            case 0x70 or 0x71:
            {
                if (sense.Length < 3) return null;
                var key = (SenseKey)(sense[2] & 0x0f);
                byte asc = sense.Length > 12 ? sense[12] : (byte)0;
                byte ascq = sense.Length > 13 ? sense[13] : (byte)0;
                ulong? info = (sense[0] & 0x80) != 0 && sense.Length >= 7 ? BinaryPrimitives.ReadUInt32BigEndian(sense[3..]) : null;
                return new SenseData(code, key, asc, ascq, info, sense.ToArray());
            }
            case 0x72 or 0x73:
            {
                if (sense.Length < 4) return null;
                var key = (SenseKey)(sense[1] & 0x0f);
                ulong? info = null;
                int additional = sense.Length >= 8 ? sense[7] : 0;
                // Fixed 8-byte header; the descriptors are what the ADDITIONAL SENSE LENGTH and the bytes received both cover.
                var descriptors = sense.Length > 8 ? sense[8..Math.Min(sense.Length, 8 + additional)] : [];
                while (descriptors.Length >= 2)
                {
                    var type = descriptors[0];
                    var len = descriptors[1];
                    if (descriptors.Length < 2 + len) break;
                    // Information descriptor (type 0): VALID bit, then an 8-byte INFORMATION field.
                    if (type == 0x00 && len >= 0x0a && (descriptors[2] & 0x80) != 0)
                        info = BinaryPrimitives.ReadUInt64BigEndian(descriptors[4..]);
                    descriptors = descriptors[(2 + len)..];
                }
                return new SenseData(code, key, sense[2], sense[3], info, sense.ToArray());
            }
            default:
                return null;
        }
    }

    /// <summary>The text for this ASC/ASCQ (SPC-4 Annex D), or a numeric placeholder.</summary>
    public string AdditionalSenseText => AdditionalSenseCodes.Describe(AdditionalSenseCode, AdditionalSenseCodeQualifier);

    public static string Describe(SenseKey key) => key switch
    {
        SenseKey.NoSense => "NO SENSE",
        SenseKey.RecoveredError => "RECOVERED ERROR",
        SenseKey.NotReady => "NOT READY",
        SenseKey.MediumError => "MEDIUM ERROR",
        SenseKey.HardwareError => "HARDWARE ERROR",
        SenseKey.IllegalRequest => "ILLEGAL REQUEST",
        SenseKey.UnitAttention => "UNIT ATTENTION",
        SenseKey.DataProtect => "DATA PROTECT",
        SenseKey.BlankCheck => "BLANK CHECK",
        SenseKey.VendorSpecific => "VENDOR SPECIFIC",
        SenseKey.CopyAborted => "COPY ABORTED",
        SenseKey.AbortedCommand => "ABORTED COMMAND",
        SenseKey.VolumeOverflow => "VOLUME OVERFLOW",
        SenseKey.Miscompare => "MISCOMPARE",
        SenseKey.Completed => "COMPLETED",
        _ => "RESERVED",
    };

    /// <summary>E.g. "MEDIUM ERROR: unrecovered read error (ASC/ASCQ 11/00)".</summary>
    public override string ToString()
        => $"{Describe(Key)}: {AdditionalSenseText} (ASC/ASCQ {AdditionalSenseCode:x2}/{AdditionalSenseCodeQualifier:x2})"
           + (Information is ulong lba ? $" at {lba}" : "");
}
