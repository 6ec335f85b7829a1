namespace IserBlockd.Transport.Iser;

/// <summary>The flags of the iSER CM private data (kernel <c>struct iser_cm_hdr</c>, from IBTA Annex A12).</summary>
[Flags]
public enum IserCmFlags : byte
{
    None = 0,
    /// <summary>The initiator does not accept Send with Invalidate (ISER_SEND_W_INV_NOT_SUP).</summary>
    SendWithInvalidateNotSupported = 0x40,
    /// <summary>The initiator's tagged buffers use real virtual addresses, not zero-based ones (ISER_ZBVA_NOT_SUP).</summary>
    ZeroBasedVirtualAddressNotSupported = 0x80,
}

/// <summary>
/// The private data of the RDMA-CM connect request (and the target's accept): 1 flags byte then 3 reserved bytes.
/// Linux targets (LIO isert, tgt) reject the iSER Hello message on IB/RoCE; this header is how initiator and target
/// agree instead, as the kernel's ib_iser does.
/// </summary>
public readonly record struct IserCmHeader(IserCmFlags Flags)
{
    /// <summary>sizeof(struct iser_cm_hdr).</summary>
    public const int Size = 4;

    /// <summary>
    /// What our initiator sends: it registers buffers with their real addresses (no ZBVA) and does not use Send
    /// with Invalidate (it never registers per-command memory regions to invalidate).
    /// </summary>
    public static IserCmHeader Initiator { get; } =
        new(IserCmFlags.ZeroBasedVirtualAddressNotSupported | IserCmFlags.SendWithInvalidateNotSupported);

    /// <summary>
    /// What our initiator sends when it scopes remote access with a memory window per command: the target may end a
    /// command with Send with Invalidate of that window's key (the initiator checks the key and invalidates locally
    /// otherwise).
    /// </summary>
    public static IserCmHeader InitiatorWithWindows { get; } = new(IserCmFlags.ZeroBasedVirtualAddressNotSupported);

    /// <summary>Writes the 4 bytes (reserved bytes zero); returns <see cref="Size"/>.</summary>
    public int WriteTo(Span<byte> destination)
    {
        if (destination.Length < Size)
            throw new ArgumentException($"The iSER CM header needs {Size} bytes, the buffer has {destination.Length}.", nameof(destination));
        destination[0] = (byte)Flags;
        destination[1..Size].Clear();
        return Size;
    }

    public byte[] ToArray()
    {
        var bytes = new byte[Size];
        WriteTo(bytes);
        return bytes;
    }

    /// <summary>
    /// Reads the header at the start of a peer's private data (RoCE/IB pad private data with zeros; reserved bits are
    /// ignored on receipt). False when there are fewer than <see cref="Size"/> bytes: the peer sent no iSER header.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> privateData, out IserCmHeader header)
    {
        if (privateData.Length < Size)
        {
            header = default;
            return false;
        }
        header = new IserCmHeader((IserCmFlags)(privateData[0] & (byte)(IserCmFlags.SendWithInvalidateNotSupported | IserCmFlags.ZeroBasedVirtualAddressNotSupported)));
        return true;
    }
}
