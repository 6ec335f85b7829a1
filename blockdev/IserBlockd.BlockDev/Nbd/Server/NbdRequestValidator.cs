using IserBlockd.BlockDev.Nbd.Protocol;

namespace IserBlockd.BlockDev.Nbd;

/// <summary>
/// Checks a request against what the connection negotiated and the export's current size and block sizes,
/// with the error values doc/proto.md ("Error values") prescribes and a message for structured replies.
/// </summary>
/// <remarks>The maximum block size bounds payloads only (READ, WRITE): TRIM and WRITE_ZEROES carry none
/// and may be longer (nbdcopy zeroes holes 128 MiB at a time); the device splits them.</remarks>
internal sealed class NbdRequestValidator(NbdExport export, NbdTransmissionFlags flags, bool structuredReplies, bool allocationContext)
{
    private static readonly ReadOnlyMemory<byte> UnknownCommand = "unknown command"u8.ToArray();
    private static readonly ReadOnlyMemory<byte> UnsupportedFlags = "command flags not supported for this command or export"u8.ToArray();
    private static readonly ReadOnlyMemory<byte> ReadOnlyExport = "the export is read-only"u8.ToArray();
    private static readonly ReadOnlyMemory<byte> BeyondEnd = "request extends beyond the end of the export"u8.ToArray();
    private static readonly ReadOnlyMemory<byte> Unaligned = "offset or length not aligned to the minimum block size"u8.ToArray();
    private static readonly ReadOnlyMemory<byte> TooLong = "length exceeds the maximum block size"u8.ToArray();
    private static readonly ReadOnlyMemory<byte> FlushNotSupported = "the export does not support flush"u8.ToArray();
    private static readonly ReadOnlyMemory<byte> FlushWithRange = "flush requests must have zero offset and length"u8.ToArray();
    private static readonly ReadOnlyMemory<byte> TrimNotSupported = "the export does not support trim"u8.ToArray();
    private static readonly ReadOnlyMemory<byte> NoMetaContext = "no meta context was negotiated (NBD_OPT_SET_META_CONTEXT base:allocation)"u8.ToArray();
    private static readonly ReadOnlyMemory<byte> EmptyRange = "length must not be zero"u8.ToArray();
    private static readonly ReadOnlyMemory<byte> ZeroingNotFast = "zeroing would not be faster than writing zeroes"u8.ToArray();

    private readonly NbdBlockSizeConstraints _limits = export.BlockSizes;
    private readonly NbdCommandFlags _fua = (flags & NbdTransmissionFlags.SendFua) != 0 ? NbdCommandFlags.Fua : NbdCommandFlags.None;
    private readonly NbdCommandFlags _fastZero = (flags & NbdTransmissionFlags.SendFastZero) != 0 ? NbdCommandFlags.FastZero : NbdCommandFlags.None;
    private readonly bool _zeroingIsFast = (export.Device.Features & BlockDeviceFeatures.WriteZeroes) != 0;

    /// <summary>0 when the request may run; otherwise the error to answer with, and why.</summary>
    public BlockError Validate(in NbdRequest request, out ReadOnlyMemory<byte> reason)
    {
        NbdCommandFlags allowed;
        bool writes, hasRange, boundedByMaximum;
        BlockError beyondEnd;
        switch (request.Command)
        {
            case NbdCommand.Read:
                allowed = _fua | (structuredReplies ? NbdCommandFlags.DontFragment : 0);
                writes = false; hasRange = true; boundedByMaximum = true; beyondEnd = BlockError.InvalidArgument;
                break;
            case NbdCommand.Write:
                allowed = _fua;
                writes = true; hasRange = true; boundedByMaximum = true; beyondEnd = BlockError.NoSpace;
                break;
            case NbdCommand.WriteZeroes:
                allowed = _fua | NbdCommandFlags.NoHole | _fastZero;
                writes = true; hasRange = true; boundedByMaximum = false; beyondEnd = BlockError.NoSpace;
                break;
            case NbdCommand.Trim:
                allowed = _fua;
                writes = true; hasRange = true; boundedByMaximum = false; beyondEnd = BlockError.InvalidArgument;
                break;
            case NbdCommand.Flush:
                allowed = _fua;
                writes = false; hasRange = false; boundedByMaximum = false; beyondEnd = BlockError.InvalidArgument;
                break;
            case NbdCommand.Cache:
                allowed = NbdCommandFlags.None;
                writes = false; hasRange = true; boundedByMaximum = false; beyondEnd = BlockError.InvalidArgument;
                break;
            case NbdCommand.BlockStatus:
                if (!allocationContext)
                {
                    reason = NoMetaContext;
                    return BlockError.InvalidArgument;
                }
                if (request.Length == 0)
                {
                    reason = EmptyRange;
                    return BlockError.InvalidArgument;
                }
                allowed = NbdCommandFlags.ReqOne;
                writes = false; hasRange = true; boundedByMaximum = false; beyondEnd = BlockError.InvalidArgument;
                break;
            default:
                reason = UnknownCommand;
                return BlockError.InvalidArgument;
        }
        if ((request.Flags & ~allowed) != 0)
        {
            reason = UnsupportedFlags;
            return BlockError.InvalidArgument;
        }
        if (writes && export.IsReadOnly)
        {
            reason = ReadOnlyExport;
            return BlockError.PermissionDenied;
        }
        if (request.Command == NbdCommand.Flush)
        {
            if ((flags & NbdTransmissionFlags.SendFlush) == 0)
            {
                reason = FlushNotSupported;
                return BlockError.InvalidArgument;
            }
            if (request.Offset != 0 || request.Length != 0)
            {
                reason = FlushWithRange;
                return BlockError.InvalidArgument;
            }
        }
        if (request.Command == NbdCommand.Trim && (flags & NbdTransmissionFlags.SendTrim) == 0)
        {
            reason = TrimNotSupported;
            return BlockError.InvalidArgument;
        }
        if (hasRange)
        {
            // The device's size now, not at negotiation: a LUN grown at the target (rescan, capacity-changed unit
            // attention) is used at once by the kernel's /dev/nbdX, whose connections were set up with the old size.
            var size = (ulong)export.Device.Geometry.Size;
            if (request.Offset > size || request.Length > size - request.Offset)
            {
                reason = BeyondEnd;
                return beyondEnd;
            }
            var mask = _limits.Minimum - 1;
            if ((request.Offset & mask) != 0 || (request.Length & mask) != 0)
            {
                reason = Unaligned;
                return BlockError.InvalidArgument;
            }
            if (boundedByMaximum && request.Length > _limits.Maximum)
            {
                reason = TooLong;
                return BlockError.InvalidArgument;
            }
        }
        if ((request.Flags & NbdCommandFlags.FastZero) != 0 && !_zeroingIsFast)
        {
            reason = ZeroingNotFast;
            return BlockError.NotSupported;
        }
        reason = default;
        return 0;
    }
}
