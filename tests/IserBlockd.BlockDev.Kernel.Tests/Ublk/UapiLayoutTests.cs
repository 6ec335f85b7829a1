using System.Runtime.InteropServices;
using IserBlockd.BlockDev.Kernel.IoUring;
using IserBlockd.BlockDev.Kernel.Ublk;

namespace IserBlockd.BlockDev.Kernel.Tests.Ublk;

/// <summary>Our blittable structs and constants against linux/io_uring.h and linux/ublk_cmd.h, compiled with gcc.</summary>
[Trait("Category", "RealPeer")]
public class UapiLayoutTests
{
    private static void Same<T>(string cStruct, params (string C, string Ours)[] fields) where T : struct
    {
        Assert.Equal(UapiLayout.Get($"sizeof {cStruct}"), Marshal.SizeOf<T>());
        foreach (var (c, ours) in fields)
            Assert.True(UapiLayout.Get($"offsetof {cStruct}.{c}") == Marshal.OffsetOf<T>(ours).ToInt64(), $"{cStruct}.{c} vs {typeof(T).Name}.{ours}");
    }

    private static long C(string name) => UapiLayout.Get("const " + name);

    private static void Header(string name, long ours) => Assert.Equal(C(name), ours);

    private static void Agrees(long expected, long actual) => Assert.Equal(expected, actual);

    [Fact]
    public void Io_uring_structs_match_the_header()
    {
        Same<IoUringSqe>("io_uring_sqe", ("opcode", "Opcode"), ("flags", "Flags"), ("ioprio", "IoPriority"), ("fd", "Fd"),
            ("off", "Offset"), ("cmd_op", "CommandOp"), ("addr", "Address"), ("len", "Length"), ("uring_cmd_flags", "OpFlags"),
            ("user_data", "UserData"), ("buf_index", "BufferIndex"), ("personality", "Personality"), ("file_index", "FileIndex"),
            ("addr3", "Address3"));
        Agrees(UapiLayout.Get("offsetof io_uring_sqe.cmd"), IoUringSqe.CommandOffset);
        Same<IoUringCqe>("io_uring_cqe", ("user_data", "UserData"), ("res", "Res"), ("flags", "Flags"));
        Same<IoUringParams>("io_uring_params", ("features", "Features"), ("sq_off", "SqOff"), ("cq_off", "CqOff"));
        Same<IoSqRingOffsets>("io_sqring_offsets", ("array", "Array"));
        Same<IoCqRingOffsets>("io_cqring_offsets", ("cqes", "Cqes"));
        Same<IoUringGetEventsArg>("io_uring_getevents_arg", ("ts", "Timespec"));
    }

    [Fact]
    public void Io_uring_constants_match_the_header()
    {
        Header("IORING_OP_NOP", (long)IoUringOpcode.Nop);
        Header("IORING_OP_READ", (long)IoUringOpcode.Read);
        Header("IORING_OP_WRITE", (long)IoUringOpcode.Write);
        Header("IORING_OP_URING_CMD", (long)IoUringOpcode.UringCmd);
        Header("IORING_SETUP_SQE128", (long)IoUringSetupFlags.Sqe128);
        Header("IORING_SETUP_COOP_TASKRUN", (long)IoUringSetupFlags.CoopTaskRun);
        Header("IORING_SETUP_SINGLE_ISSUER", (long)IoUringSetupFlags.SingleIssuer);
        Header("IORING_ENTER_GETEVENTS", IoUringNative.EnterGetEvents);
        Header("IORING_ENTER_EXT_ARG", IoUringNative.EnterExtArg);
        Header("IORING_FEAT_SINGLE_MMAP", IoUringNative.FeatureSingleMmap);
        Header("IORING_FEAT_EXT_ARG", IoUringNative.FeatureExtArg);
        Header("IORING_OFF_SQ_RING", IoUringNative.OffSqRing);
        Header("IORING_OFF_SQES", IoUringNative.OffSqes);
    }

    [Fact]
    public void Ublk_structs_match_the_header()
    {
        Same<UblkControlCommand>("ublksrv_ctrl_cmd", ("dev_id", "DeviceId"), ("queue_id", "QueueId"), ("len", "Length"),
            ("addr", "Address"), ("data", "Data0"));
        Agrees(UblkCommands.ControlCommandSize, Marshal.SizeOf<UblkControlCommand>());
        Same<UblkDeviceInfo>("ublksrv_ctrl_dev_info", ("queue_depth", "QueueDepth"), ("state", "State"),
            ("max_io_buf_bytes", "MaxIoBufferBytes"), ("dev_id", "DeviceId"), ("ublksrv_pid", "ServerPid"), ("flags", "Flags"),
            ("ublksrv_flags", "ServerFlags"));
        Same<UblkIoDescriptor>("ublksrv_io_desc", ("nr_sectors", "SectorCount"), ("start_sector", "StartSector"), ("addr", "Address"));
        Same<UblkIoCommand>("ublksrv_io_cmd", ("tag", "Tag"), ("result", "Result"), ("addr", "Address"));
        Agrees(UblkCommands.IoCommandSize, Marshal.SizeOf<UblkIoCommand>());
        Same<UblkBasicParams>("ublk_param_basic", ("logical_bs_shift", "LogicalBlockShift"), ("physical_bs_shift", "PhysicalBlockShift"),
            ("io_opt_shift", "IoOptimalShift"), ("io_min_shift", "IoMinimumShift"), ("max_sectors", "MaxSectors"),
            ("chunk_sectors", "ChunkSectors"), ("dev_sectors", "DeviceSectors"), ("virt_boundary_mask", "VirtualBoundaryMask"));
        Same<UblkDiscardParams>("ublk_param_discard", ("discard_granularity", "DiscardGranularity"),
            ("max_discard_sectors", "MaxDiscardSectors"), ("max_write_zeroes_sectors", "MaxWriteZeroesSectors"),
            ("max_discard_segments", "MaxDiscardSegments"));
        Same<UblkParams>("ublk_params", ("types", "Types"), ("basic", "Basic"), ("discard", "Discard"));
    }

    [Fact]
    public void Ublk_constants_match_the_header()
    {
        Header("UBLK_CMD_GET_DEV_INFO", UblkCommands.GetDeviceInfo);
        Header("UBLK_CMD_ADD_DEV", UblkCommands.AddDevice);
        Header("UBLK_CMD_DEL_DEV", UblkCommands.DeleteDevice);
        Header("UBLK_CMD_START_DEV", UblkCommands.StartDevice);
        Header("UBLK_CMD_STOP_DEV", UblkCommands.StopDevice);
        Header("UBLK_CMD_SET_PARAMS", UblkCommands.SetParams);
        Header("UBLK_CMD_GET_PARAMS", UblkCommands.GetParams);
        Header("UBLK_CMD_START_USER_RECOVERY", UblkCommands.StartUserRecovery);
        Header("UBLK_CMD_END_USER_RECOVERY", UblkCommands.EndUserRecovery);
        Header("UBLK_IO_FETCH_REQ", UblkCommands.FetchRequest);
        Header("UBLK_IO_COMMIT_AND_FETCH_REQ", UblkCommands.CommitAndFetchRequest);
        Header("UBLK_IO_RES_ABORT", UblkCommands.IoResultAbort);
        Header("UBLKSRV_CMD_BUF_OFFSET", UblkCommands.DescriptorOffset);
        Header("UBLKSRV_IO_BUF_OFFSET", UblkCommands.IoBufferOffset);
        Header("UBLK_MAX_QUEUE_DEPTH", UblkCommands.MaxQueueDepth);
        Header("UBLK_F_USER_RECOVERY", (long)UblkFeatures.UserRecovery);
        Header("UBLK_F_USER_RECOVERY_REISSUE", (long)UblkFeatures.UserRecoveryReissue);
        Header("UBLK_IO_OP_READ", (long)UblkIoOp.Read);
        Header("UBLK_IO_OP_WRITE", (long)UblkIoOp.Write);
        Header("UBLK_IO_OP_FLUSH", (long)UblkIoOp.Flush);
        Header("UBLK_IO_OP_DISCARD", (long)UblkIoOp.Discard);
        Header("UBLK_IO_OP_WRITE_ZEROES", (long)UblkIoOp.WriteZeroes);
        Header("UBLK_IO_F_FUA", (long)UblkIoFlags.Fua);
        Header("UBLK_IO_F_NOUNMAP", (long)UblkIoFlags.NoUnmap);
        Header("UBLK_ATTR_READ_ONLY", (long)UblkAttributes.ReadOnly);
        Header("UBLK_ATTR_ROTATIONAL", (long)UblkAttributes.Rotational);
        Header("UBLK_ATTR_VOLATILE_CACHE", (long)UblkAttributes.VolatileCache);
        Header("UBLK_ATTR_FUA", (long)UblkAttributes.Fua);
        Header("UBLK_PARAM_TYPE_BASIC", (long)UblkParamTypes.Basic);
        Header("UBLK_PARAM_TYPE_DISCARD", (long)UblkParamTypes.Discard);
        Header("UBLK_S_DEV_DEAD", (long)UblkDeviceState.Dead);
        Header("UBLK_S_DEV_LIVE", (long)UblkDeviceState.Live);
        Header("UBLK_S_DEV_QUIESCED", (long)UblkDeviceState.Quiesced);
    }
}
