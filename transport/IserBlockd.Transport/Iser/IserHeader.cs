using System.Buffers.Binary;

namespace IserBlockd.Transport.Iser;

/// <summary>The flags byte of the iSER header (RFC 7145 §9.2; the kernel's <c>struct iser_ctrl</c>).</summary>
[Flags]
public enum IserHeaderFlags : byte
{
    None = 0,

    /// <summary>RSV: the read STag and read VA are valid (the target RDMA-Writes READ data there).</summary>
    ReadValid = 0x04,

    /// <summary>WSV: the write STag and write VA are valid (the target RDMA-Reads WRITE data from there).</summary>
    WriteValid = 0x08,

    /// <summary>Opcode 0x1 in the high nibble: an iSCSI control-type PDU follows. Every PDU we send carries it.</summary>
    IscsiControl = 0x10,

    /// <summary>Opcode 0x2: iSER Hello (never sent: Linux targets reject it on IB/RoCE).</summary>
    Hello = 0x20,

    /// <summary>Opcode 0x3: iSER HelloReply.</summary>
    HelloReply = 0x30,
}

/// <summary>
/// The 28-byte iSER header that precedes the iSCSI BHS in every RDMA Send (RFC 7145 §9.2): flags, 3 reserved bytes,
/// write STag (4) and write base VA (8), read STag (4) and read base VA (8), all big-endian. A SCSI Command that moves
/// data advertises the task buffer's STag/VA here; the target then RDMA-Reads the write data (from the write VA, which
/// already skips the unsolicited part) and RDMA-Writes the read data (to the read VA) itself.
/// </summary>
public readonly record struct IserHeader(IserHeaderFlags Flags, uint WriteStag, ulong WriteVirtualAddress, uint ReadStag, ulong ReadVirtualAddress)
{
    public const int Length = 28;

    /// <summary>The opcode nibble mask of <see cref="Flags"/>.</summary>
    public const byte OpcodeMask = 0xf0;

    /// <summary>A control-type PDU without tagged buffers (login, NOP-Out, Text, Logout, TMF, Data-Out, a command without data).</summary>
    public static IserHeader Control { get; } = new(IserHeaderFlags.IscsiControl, 0, 0, 0, 0);

    /// <summary>The opcode nibble (<see cref="IserHeaderFlags.IscsiControl"/>, Hello, HelloReply).</summary>
    public IserHeaderFlags Opcode => (IserHeaderFlags)((byte)Flags & OpcodeMask);

    public bool HasWrite => (Flags & IserHeaderFlags.WriteValid) != 0;

    public bool HasRead => (Flags & IserHeaderFlags.ReadValid) != 0;

    /// <summary>A control PDU for a SCSI command whose target fetches <paramref name="write"/> and/or fills <paramref name="read"/>.</summary>
    public static IserHeader ForCommand(uint writeStag, ulong writeVa, bool write, uint readStag, ulong readVa, bool read)
    {
        var flags = IserHeaderFlags.IscsiControl;
        if (write) flags |= IserHeaderFlags.WriteValid;
        if (read) flags |= IserHeaderFlags.ReadValid;
        return new IserHeader(flags, write ? writeStag : 0, write ? writeVa : 0, read ? readStag : 0, read ? readVa : 0);
    }

    /// <summary>Writes the 28 bytes (reserved bytes zero).</summary>
    public void Write(Span<byte> destination)
    {
        if (destination.Length < Length)
            throw new ArgumentException($"The iSER header needs {Length} bytes, the buffer has {destination.Length}.", nameof(destination));
        destination[0] = (byte)Flags;
        destination[1] = 0;
        destination[2] = 0;
        destination[3] = 0;
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], WriteStag);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], WriteVirtualAddress);
        BinaryPrimitives.WriteUInt32BigEndian(destination[16..], ReadStag);
        BinaryPrimitives.WriteUInt64BigEndian(destination[20..], ReadVirtualAddress);
    }

    /// <summary>Reads a header (reserved bytes are ignored on receipt).</summary>
    public static IserHeader Read(ReadOnlySpan<byte> source)
    {
        if (source.Length < Length)
            throw new ArgumentException($"An iSER header is {Length} bytes, got {source.Length}.", nameof(source));
        return new IserHeader((IserHeaderFlags)source[0],
            BinaryPrimitives.ReadUInt32BigEndian(source[4..]), BinaryPrimitives.ReadUInt64BigEndian(source[8..]),
            BinaryPrimitives.ReadUInt32BigEndian(source[16..]), BinaryPrimitives.ReadUInt64BigEndian(source[20..]));
    }

    public override string ToString()
    {
        var text = Opcode switch
        {
            IserHeaderFlags.IscsiControl => "iSCSI control",
            IserHeaderFlags.Hello => "iSER Hello",
            IserHeaderFlags.HelloReply => "iSER HelloReply",
            _ => $"iSER opcode 0x{(byte)Opcode >> 4:x}",
        };
        if (HasWrite) text += $", write STag 0x{WriteStag:x8} VA 0x{WriteVirtualAddress:x}";
        if (HasRead) text += $", read STag 0x{ReadStag:x8} VA 0x{ReadVirtualAddress:x}";
        return text;
    }
}
