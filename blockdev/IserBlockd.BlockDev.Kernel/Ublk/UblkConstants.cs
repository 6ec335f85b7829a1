namespace IserBlockd.BlockDev.Kernel.Ublk;

/// <summary>UBLK_F_*: device features asked for at ADD_DEV (the kernel answers with those it granted).</summary>
[Flags]
public enum UblkFeatures : ulong
{
    None = 0,
    UringCmdCompletionInTask = 1ul << 1,
    NeedGetData = 1ul << 2,
    /// <summary>The device outlives its server: I/O is queued until a new one takes over (START/END_USER_RECOVERY).</summary>
    UserRecovery = 1ul << 3,
    /// <summary>With <see cref="UserRecovery"/>: requests the dead server had been handed are reissued, not failed.</summary>
    UserRecoveryReissue = 1ul << 4,
    UnprivilegedDevice = 1ul << 5,
    /// <summary>Commands are encoded as ioctl numbers (UBLK_U_*) (Linux 6.4+).</summary>
    CommandIoctlEncode = 1ul << 6,
    /// <summary>Data moves by pread/pwrite on /dev/ublkcN into and out of the server's own buffers (Linux 6.5+).</summary>
    UserCopy = 1ul << 7,
}

/// <summary>UBLK_S_DEV_*.</summary>
public enum UblkDeviceState : ushort
{
    Dead = 0,
    Live = 1,
    Quiesced = 2,
    FailIo = 3,
}

/// <summary>UBLK_IO_OP_*.</summary>
internal enum UblkIoOp : byte
{
    Read = 0,
    Write = 1,
    Flush = 2,
    Discard = 3,
    WriteSame = 4,
    WriteZeroes = 5,
}

/// <summary>UBLK_IO_F_* (bits 8-31 of op_flags).</summary>
[Flags]
internal enum UblkIoFlags : uint
{
    None = 0,
    Fua = 1u << 13,
    NoUnmap = 1u << 15,
}

/// <summary>UBLK_ATTR_* of the basic parameters.</summary>
[Flags]
internal enum UblkAttributes : uint
{
    None = 0,
    ReadOnly = 1u << 0,
    Rotational = 1u << 1,
    VolatileCache = 1u << 2,
    Fua = 1u << 3,
}

/// <summary>UBLK_PARAM_TYPE_*.</summary>
[Flags]
internal enum UblkParamTypes : uint
{
    None = 0,
    Basic = 1u << 0,
    Discard = 1u << 1,
}

/// <summary>
/// Command numbers (UBLK_CMD_*, UBLK_IO_*) and their ioctl encodings (UBLK_U_*, Linux 6.4+, which a kernel built
/// without CONFIG_BLKDEV_UBLK_LEGACY_OPCODES requires), and the user-copy offsets of /dev/ublkcN.
/// </summary>
internal static class UblkCommands
{
    public const uint GetDeviceInfo = 0x02;
    public const uint AddDevice = 0x04;
    public const uint DeleteDevice = 0x05;
    public const uint StartDevice = 0x06;
    public const uint StopDevice = 0x07;
    public const uint SetParams = 0x08;
    public const uint GetParams = 0x09;
    public const uint StartUserRecovery = 0x10;
    public const uint EndUserRecovery = 0x11;
    public const uint GetFeatures = 0x13;
    public const uint FetchRequest = 0x20;
    public const uint CommitAndFetchRequest = 0x21;

    public const int ControlCommandSize = 32;   // sizeof(struct ublksrv_ctrl_cmd)
    public const int IoCommandSize = 16;        // sizeof(struct ublksrv_io_cmd)

    /// <summary>UBLK_IO_RES_ABORT: the queue is going away; this tag will not be handed out again.</summary>
    public const int IoResultAbort = -19;

    public const int MaxQueueDepth = 4096;
    public const int MaxQueues = 4096;

    /// <summary>Offset of queue 0's descriptor array in /dev/ublkcN (UBLKSRV_CMD_BUF_OFFSET).</summary>
    public const long DescriptorOffset = 0;

    /// <summary>UBLKSRV_IO_BUF_OFFSET: where user-copy positions start.</summary>
    public const long IoBufferOffset = 0x80000000;
    public const int IoBufferBits = 25;    // at most 32 MiB per request
    public const int TagShift = IoBufferBits;
    public const int TagBits = 16;
    public const int QueueShift = TagShift + TagBits;
    public const int MaxIoBufferBytes = 1 << IoBufferBits;

    /// <summary>_IOWR('u', nr, size).</summary>
    public static uint ReadWrite(uint nr, int size) => Ioctl(3, nr, size);

    /// <summary>_IOR('u', nr, size).</summary>
    public static uint Read(uint nr, int size) => Ioctl(2, nr, size);

    private static uint Ioctl(uint direction, uint nr, int size) => direction << 30 | (uint)size << 16 | (uint)'u' << 8 | nr;

    /// <summary>The ioctl-encoded op of control command <paramref name="nr"/> (the GET_* ones read, the rest read and write).</summary>
    public static uint ControlOp(uint nr) => nr is GetDeviceInfo or GetParams or GetFeatures
        ? Read(nr, ControlCommandSize)
        : ReadWrite(nr, ControlCommandSize);

    public static uint IoOp(uint nr) => ReadWrite(nr, IoCommandSize);

    /// <summary>The pread/pwrite position of byte <paramref name="offset"/> of request <paramref name="tag"/> of queue <paramref name="queue"/>.</summary>
    public static long UserCopyPosition(int queue, int tag, int offset = 0) =>
        IoBufferOffset + ((long)queue << QueueShift) + ((long)tag << TagShift) + offset;

    /// <summary>Bytes of queue <paramref name="queue"/>'s descriptor array mapping and where it starts.</summary>
    public static (long Offset, int Length) DescriptorArea(int queue, int depth, int pageSize)
    {
        static int RoundUp(int n, int page) => (n + page - 1) / page * page;
        var maxPerQueue = RoundUp(MaxQueueDepth * 24, pageSize);
        return (DescriptorOffset + (long)queue * maxPerQueue, RoundUp(depth * 24, pageSize));
    }
}
