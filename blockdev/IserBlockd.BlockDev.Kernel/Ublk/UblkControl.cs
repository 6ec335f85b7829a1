using System.Runtime.InteropServices;
using IserBlockd.BlockDev.Kernel.IoUring;
using IserBlockd.Primitives.Native;

namespace IserBlockd.BlockDev.Kernel.Ublk;

/// <summary>
/// /dev/ublk-control: the ublk driver's control commands, each an URING_CMD in a 128-byte SQE on a small ring
/// of our own, answered by its completion. One command at a time (a lock); every command has a deadline.
/// START_DEV and END_USER_RECOVERY wait in the kernel until every queue has fetched all its tags, so they must be
/// sent after the queue threads have submitted their FETCH_REQs.
/// </summary>
public sealed unsafe class UblkControl : IDisposable
{
    public const string ControlPath = "/dev/ublk-control";

    private readonly FileDescriptorHandle _fd;
    private readonly IoUringRing _ring;
    private readonly Lock _lock = new();
    private ulong _sequence;

    private UblkControl(FileDescriptorHandle fd, IoUringRing ring)
    {
        _fd = fd;
        _ring = ring;
    }

    /// <summary>Whether this kernel has ublk (the ublk_drv module is loaded, or built in).</summary>
    public static bool Available => File.Exists(ControlPath);

    /// <summary>Opens /dev/ublk-control, with an error that says what to do when the kernel has no ublk.</summary>
    public static UblkControl Open()
    {
        if (!Available)
            throw new UblkException($"{ControlPath} does not exist: this kernel has no ublk (Linux 6.0 or later with " +
                "CONFIG_BLK_DEV_UBLK; load it with 'modprobe ublk_drv'); use a /dev/nbdN device instead", 2);
        var fd = LibC.open(ControlPath, LibC.O_RDWR | LibC.O_CLOEXEC);
        if (fd < 0)
        {
            var errno = Errno.Last;
            throw new UblkException($"open {ControlPath}: {Errno.Describe(errno)}" + (errno is 1 or 13 ? " (needs root)" : ""), errno);
        }
        var handle = new FileDescriptorHandle(fd);
        try { return new UblkControl(handle, IoUringRing.Create(4, IoUringSetupFlags.Sqe128)); }
        catch { handle.Dispose(); throw; }
    }

    /// <summary>UBLK_U_CMD_GET_FEATURES: the features this kernel's driver supports (Linux 6.5+).</summary>
    public UblkFeatures GetFeatures()
    {
        ulong features = 0;
        Send(UblkCommands.GetFeatures, new UblkControlCommand { DeviceId = uint.MaxValue, QueueId = ushort.MaxValue, Address = (ulong)&features, Length = 8 },
            "GET_FEATURES", TimeSpan.FromSeconds(10));
        return (UblkFeatures)features;
    }

    /// <summary>ADD_DEV: creates /dev/ublkcN (not yet the block device). <paramref name="info"/> carries what we ask
    /// for (id or uint.MaxValue for any) and receives what the kernel granted.</summary>
    internal void AddDevice(ref UblkDeviceInfo info)
    {
        fixed (UblkDeviceInfo* p = &info)
            Send(UblkCommands.AddDevice, new UblkControlCommand
            {
                DeviceId = info.DeviceId, QueueId = ushort.MaxValue, Address = (ulong)p, Length = (ushort)sizeof(UblkDeviceInfo),
            }, "ADD_DEV", TimeSpan.FromSeconds(30));
    }

    internal UblkDeviceInfo GetDeviceInfo(int id)
    {
        UblkDeviceInfo info = default;
        Send(UblkCommands.GetDeviceInfo, Header(id, (ulong)&info, sizeof(UblkDeviceInfo)), $"GET_DEV_INFO of ublk {id}", TimeSpan.FromSeconds(10));
        return info;
    }

    internal void SetParams(int id, in UblkParams parameters)
    {
        var copy = parameters;
        Send(UblkCommands.SetParams, Header(id, (ulong)&copy, sizeof(UblkParams)), $"SET_PARAMS of ublk {id}", TimeSpan.FromSeconds(10));
    }

    internal UblkParams GetParams(int id)
    {
        UblkParams parameters = default;
        parameters.Length = (uint)sizeof(UblkParams);
        Send(UblkCommands.GetParams, Header(id, (ulong)&parameters, sizeof(UblkParams)), $"GET_PARAMS of ublk {id}", TimeSpan.FromSeconds(10));
        return parameters;
    }

    /// <summary>START_DEV: adds /dev/ublkbN once every queue has fetched all its tags (the kernel waits for that).</summary>
    public void StartDevice(int id, TimeSpan timeout) =>
        Send(UblkCommands.StartDevice, Header(id, 0, 0, (ulong)Environment.ProcessId), $"START_DEV of ublk {id}", timeout);

    /// <summary>STOP_DEV: removes /dev/ublkbN (after the requests in flight are answered) and aborts the queues' commands.</summary>
    public void StopDevice(int id, TimeSpan timeout) => Send(UblkCommands.StopDevice, Header(id, 0, 0), $"STOP_DEV of ublk {id}", timeout);

    /// <summary>DEL_DEV: removes /dev/ublkcN; the kernel waits until nothing holds it open.</summary>
    public void DeleteDevice(int id, TimeSpan timeout) => Send(UblkCommands.DeleteDevice, Header(id, 0, 0), $"DEL_DEV of ublk {id}", timeout);

    /// <summary>START_USER_RECOVERY: lets a new server take over a device whose server died (it must be quiesced,
    /// and /dev/ublkcN closed by the old one: EBUSY until then).</summary>
    public void StartUserRecovery(int id, TimeSpan timeout) =>
        Send(UblkCommands.StartUserRecovery, Header(id, 0, 0), $"START_USER_RECOVERY of ublk {id}", timeout);

    /// <summary>END_USER_RECOVERY: once every queue has fetched again, resumes the device (queued I/O goes on).</summary>
    public void EndUserRecovery(int id, TimeSpan timeout) =>
        Send(UblkCommands.EndUserRecovery, Header(id, 0, 0, (ulong)Environment.ProcessId), $"END_USER_RECOVERY of ublk {id}", timeout);

    private static UblkControlCommand Header(int id, ulong address, int length, ulong data0 = 0) => new()
    {
        DeviceId = (uint)id, QueueId = ushort.MaxValue, Address = address, Length = (ushort)length, Data0 = data0,
    };

    private void Send(uint command, UblkControlCommand header, string what, TimeSpan timeout)
    {
        lock (_lock)
        {
            var sqe = _ring.TryGetSqe();
            if (sqe == null) throw new UblkException($"{what}: the control ring is full");
            sqe->Opcode = IoUringOpcode.UringCmd;
            sqe->Fd = _fd.Fd;
            sqe->CommandOp = UblkCommands.ControlOp(command);
            sqe->UserData = ++_sequence;
            MemoryMarshal.Write(_ring.CommandArea(sqe), in header);
            if (!_ring.SubmitAndWait(timeout))
                throw new UblkException($"{what}: no answer from the kernel within {timeout.TotalSeconds:0} s", 110);
            while (_ring.TryTakeCompletion(out var cqe))
            {
                if (cqe.UserData != _sequence) continue;   // a late answer to a command that timed out
                if (cqe.Res < 0) throw new UblkException($"{what}: {Errno.Describe(-cqe.Res)}", -cqe.Res);
                return;
            }
            throw new UblkException($"{what}: the kernel answered another command");
        }
    }

    public void Dispose()
    {
        _ring.Dispose();
        _fd.Dispose();
    }
}
