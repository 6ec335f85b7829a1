using System.Buffers.Binary;

namespace IserBlockd.Iscsi.Pdu;

/// <summary>
/// Field access common to every Basic Header Segment (RFC 7143 §11.2.1): opcode, immediate bit,
/// AHS and data segment lengths, LUN and Initiator Task Tag. Everything is big-endian.
/// </summary>
public static class BasicHeaderSegment
{
    public const int Length = 48;

    /// <summary>The reserved tag value: "no task" for ITT and TTT.</summary>
    public const uint ReservedTag = 0xffff_ffff;

    /// <summary>The largest data segment the 24-bit DataSegmentLength field can describe.</summary>
    public const int MaxDataSegmentLength = 0xff_ffff;

    public static IscsiOpcode GetOpcode(ReadOnlySpan<byte> bhs) => (IscsiOpcode)(bhs[0] & 0x3f);

    public static bool IsImmediate(ReadOnlySpan<byte> bhs) => (bhs[0] & 0x40) != 0;

    public static bool IsFinal(ReadOnlySpan<byte> bhs) => (bhs[1] & 0x80) != 0;

    /// <summary>TotalAHSLength in bytes (the field counts 4-byte words).</summary>
    public static int GetTotalAhsLength(ReadOnlySpan<byte> bhs) => bhs[4] * 4;

    public static int GetDataSegmentLength(ReadOnlySpan<byte> bhs) => (bhs[5] << 16) | (bhs[6] << 8) | bhs[7];

    public static ulong GetLun(ReadOnlySpan<byte> bhs) => BinaryPrimitives.ReadUInt64BigEndian(bhs[8..]);

    public static uint GetInitiatorTaskTag(ReadOnlySpan<byte> bhs) => BinaryPrimitives.ReadUInt32BigEndian(bhs[16..]);

    /// <summary>Clears the header and writes byte 0, byte 1, TotalAHSLength and DataSegmentLength.</summary>
    public static void WriteCommon(Span<byte> bhs, IscsiOpcode opcode, bool immediate, byte flags, int totalAhsLength, int dataSegmentLength)
    {
        if ((uint)dataSegmentLength > MaxDataSegmentLength)
            throw new ArgumentOutOfRangeException(nameof(dataSegmentLength), dataSegmentLength, "data segment longer than 16 MiB - 1");
        if (totalAhsLength % 4 != 0 || totalAhsLength / 4 > 255)
            throw new ArgumentOutOfRangeException(nameof(totalAhsLength), totalAhsLength, "AHS length must be a multiple of 4 up to 1020");
        bhs[..Length].Clear();
        bhs[0] = (byte)((byte)opcode | (immediate ? 0x40 : 0));
        bhs[1] = flags;
        bhs[4] = (byte)(totalAhsLength / 4);
        bhs[5] = (byte)(dataSegmentLength >> 16);
        bhs[6] = (byte)(dataSegmentLength >> 8);
        bhs[7] = (byte)dataSegmentLength;
    }

    internal static uint U32(ReadOnlySpan<byte> bhs, int offset) => BinaryPrimitives.ReadUInt32BigEndian(bhs[offset..]);

    internal static void U32(Span<byte> bhs, int offset, uint value) => BinaryPrimitives.WriteUInt32BigEndian(bhs[offset..], value);

    internal static ushort U16(ReadOnlySpan<byte> bhs, int offset) => BinaryPrimitives.ReadUInt16BigEndian(bhs[offset..]);

    internal static void U16(Span<byte> bhs, int offset, ushort value) => BinaryPrimitives.WriteUInt16BigEndian(bhs[offset..], value);

    internal static ulong U64(ReadOnlySpan<byte> bhs, int offset) => BinaryPrimitives.ReadUInt64BigEndian(bhs[offset..]);

    internal static void U64(Span<byte> bhs, int offset, ulong value) => BinaryPrimitives.WriteUInt64BigEndian(bhs[offset..], value);

    /// <summary>Throws unless the header is at least a BHS long and carries <paramref name="expected"/>.</summary>
    internal static void Expect(ReadOnlySpan<byte> bhs, IscsiOpcode expected)
    {
        if (bhs.Length < Length)
            throw new IscsiProtocolException($"truncated header: {bhs.Length} bytes, a BHS is {Length}");
        var actual = GetOpcode(bhs);
        if (actual != expected)
            throw new IscsiProtocolException($"expected a {expected} PDU, got opcode 0x{(byte)actual:x2}");
    }
}
