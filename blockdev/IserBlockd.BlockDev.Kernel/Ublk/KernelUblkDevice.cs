using IserBlockd.Primitives.Native;

namespace IserBlockd.BlockDev.Kernel.Ublk;

/// <summary>
/// A block device served as a kernel /dev/ublkbN: the control path (ADD_DEV, SET_PARAMS, START_DEV ... DEL_DEV
/// on /dev/ublk-control) and one <see cref="UblkQueue"/> per hardware queue on /dev/ublkcN. A recoverable device
/// (UBLK_F_USER_RECOVERY with REISSUE) outlives this process: <see cref="ReleaseAsync"/> (or a crash) leaves it
/// holding I/O, and <see cref="RecoverAsync"/> in the next process takes it back. Needs root and Linux 6.5+ (user copy).
/// </summary>
public sealed class KernelUblkDevice : IAsyncDisposable
{
    private readonly UblkControl _control;
    private readonly FileDescriptorHandle _char;
    private readonly UblkDeviceOptions _options;
    private readonly List<UblkQueue> _queues = [];
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _state;   // 0 serving, 1 detached, 2 released
    private long _errors;

    private KernelUblkDevice(UblkControl control, FileDescriptorHandle charDevice, int id, IBlockDevice device, UblkDeviceOptions options, UblkFeatures features)
    {
        _control = control;
        _char = charDevice;
        Id = id;
        BlockDevice = device;
        _options = options;
        Features = features;
    }

    public int Id { get; }

    public string DevicePath => $"/dev/ublkb{Id}";

    public string CharDevicePath => $"/dev/ublkc{Id}";

    /// <summary>What the kernel granted at ADD_DEV.</summary>
    public UblkFeatures Features { get; }

    public IBlockDevice BlockDevice { get; }

    /// <summary>How long <see cref="RecoverAsync"/> waited for the kernel to let it start (the old server exiting,
    /// the device being quiesced).</summary>
    public TimeSpan RecoveryWait { get; private set; }

    /// <summary>Requests answered with an error.</summary>
    public long Errors => Interlocked.Read(ref _errors);

    /// <summary>Completes when this process no longer serves the device (detached, released, or a queue failed).</summary>
    public Task Ended => _ended.Task;

    /// <summary>Raised (on a queue or worker thread) when a request failed unexpectedly or a queue broke.</summary>
    public event Action<Exception>? Failed;

    internal int CharFd => _char.Fd;

    internal CancellationToken Stopping => _stopping.Token;

    /// <summary>Creates /dev/ublkbN for <paramref name="device"/>: ADD_DEV, SET_PARAMS, the queues' FETCH_REQs, START_DEV.</summary>
    public static Task<KernelUblkDevice> AddAsync(IBlockDevice device, UblkDeviceOptions options, CancellationToken cancellationToken = default)
    {
        options.Validate();
        return Task.Run(() =>
        {
            var control = UblkControl.Open();
            var id = -1;
            try
            {
                var pageSize = Environment.SystemPageSize;
                var maxIo = UblkParamsBuilder.MaxIoBytes(device.Geometry, pageSize);
                var wanted = UblkFeatures.UserCopy | UblkFeatures.CommandIoctlEncode |
                    (options.Recoverable ? UblkFeatures.UserRecovery | UblkFeatures.UserRecoveryReissue : 0);
                var info = new UblkDeviceInfo
                {
                    QueueCount = (ushort)options.Queues,
                    QueueDepth = (ushort)options.QueueDepth,
                    MaxIoBufferBytes = (uint)maxIo,
                    DeviceId = options.Id is { } n ? (uint)n : uint.MaxValue,
                    Flags = wanted,
                    ServerFlags = options.BackendTag,
                };
                control.AddDevice(ref info);
                id = (int)info.DeviceId;
                if ((info.Flags & wanted) != wanted)
                    throw new UblkException($"ublk {id}: the kernel did not grant {wanted & ~info.Flags} " +
                        "(UBLK_F_USER_COPY needs Linux 6.5 or later)", 95);
                control.SetParams(id, UblkParamsBuilder.Build(device.Geometry, device.Features, (int)info.MaxIoBufferBytes));
                var served = new KernelUblkDevice(control, OpenCharDevice(id, options.CommandTimeout), id, device, options, info.Flags);
                served.StartQueues(info.QueueCount, info.QueueDepth, () => control.StartDevice(id, options.CommandTimeout));
                return served;
            }
            catch
            {
                if (id >= 0)
                {
                    try { control.DeleteDevice(id, TimeSpan.FromSeconds(10)); }
                    catch (UblkException) { /* the original failure is the one to report */ }
                }
                control.Dispose();
                throw;
            }
        }, cancellationToken);
    }

    /// <summary>Takes over ublk <paramref name="id"/>, left by a server that stopped or died (START_USER_RECOVERY,
    /// the queues' FETCH_REQs, END_USER_RECOVERY): the I/O it held goes on. Waits for the kernel to finish
    /// quiescing the device after the old server's exit.</summary>
    public static Task<KernelUblkDevice> RecoverAsync(int id, IBlockDevice device, UblkDeviceOptions options, CancellationToken cancellationToken = default)
    {
        options.Validate();
        return Task.Run(() =>
        {
            var control = UblkControl.Open();
            try
            {
                var info = control.GetDeviceInfo(id);
                if ((info.Flags & UblkFeatures.UserRecovery) == 0)
                    throw new UblkException($"ublk {id} was created without UBLK_F_USER_RECOVERY: it cannot be taken over", 22);
                if (options.BackendTag != 0 && info.ServerFlags != options.BackendTag)
                    throw new UblkException($"ublk {id} belongs to another backend than {options.BackendIdentifier}", 16);
                var parameters = control.GetParams(id);
                if (parameters.Basic.DeviceSectors != (ulong)device.Geometry.Size >> 9 ||
                    1 << parameters.Basic.LogicalBlockShift != device.Geometry.LogicalBlockSize)
                    throw new UblkException($"ublk {id} has {parameters.Basic.DeviceSectors} sectors of {1 << parameters.Basic.LogicalBlockShift} " +
                        $"bytes, the LUN {device.Geometry.Size >> 9} of {device.Geometry.LogicalBlockSize}: not taken over", 22);
                var started = DateTime.UtcNow;
                var deadline = started + options.CommandTimeout;
                while (true)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    try
                    {
                        control.StartUserRecovery(id, options.CommandTimeout);
                        break;
                    }
                    catch (UblkException e) when (e.Errno == 16 && DateTime.UtcNow < deadline)
                    {
                        Thread.Sleep(200);   // the old server is still exiting, or the kernel is quiescing the device
                    }
                }
                var served = new KernelUblkDevice(control, OpenCharDevice(id, options.CommandTimeout), id, device, options, info.Flags);
                served.RecoveryWait = DateTime.UtcNow - started;
                served.StartQueues(info.QueueCount, info.QueueDepth, () => control.EndUserRecovery(id, options.CommandTimeout));
                return served;
            }
            catch
            {
                control.Dispose();
                throw;
            }
        }, cancellationToken);
    }

    /// <summary>The ublk device whose backend identifier is <paramref name="backendIdentifier"/> (kept in its
    /// ublksrv_flags), with its state, if the kernel has one.</summary>
    public static (int Id, UblkDeviceState State)? FindByBackend(string backendIdentifier)
    {
        const string chars = "/sys/class/ublk-char";
        if (!UblkControl.Available || !Directory.Exists(chars)) return null;
        var tag = UblkDeviceOptions.BackendTagOf(backendIdentifier);
        using var control = UblkControl.Open();
        foreach (var entry in Directory.EnumerateFileSystemEntries(chars, "ublkc*"))
        {
            if (!int.TryParse(Path.GetFileName(entry).AsSpan(5), out var id)) continue;
            try
            {
                var info = control.GetDeviceInfo(id);
                if (info.ServerFlags == tag) return (id, info.State);
            }
            catch (UblkException) { /* deleted meanwhile */ }
        }
        return null;
    }

    /// <summary>STOP_DEV (the kernel answers nothing new; /dev/ublkbN goes away), then DEL_DEV.</summary>
    public async Task DetachAsync()
    {
        if (Interlocked.CompareExchange(ref _state, 1, 0) != 0) return;
        try
        {
            await Task.Run(() => _control.StopDevice(Id, _options.CommandTimeout)).ConfigureAwait(false);
            await EndQueuesAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
            CloseServing();
            await Task.Run(() => _control.DeleteDevice(Id, _options.CommandTimeout)).ConfigureAwait(false);
        }
        finally
        {
            CloseServing();
            _control.Dispose();
            _ended.TrySetResult();
        }
    }

    /// <summary>Stops serving but leaves the device to a later server: requests being handled are answered, the
    /// kernel holds (and with REISSUE requeues) the rest until <see cref="RecoverAsync"/>.</summary>
    public async Task ReleaseAsync()
    {
        if (Interlocked.CompareExchange(ref _state, 2, 0) != 0) return;
        try
        {
            foreach (var q in _queues) q.Release();
            await EndQueuesAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        }
        finally
        {
            CloseServing();
            _control.Dispose();
            _ended.TrySetResult();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Volatile.Read(ref _state) == 0) await DetachAsync().ConfigureAwait(false);
        _stopping.Dispose();
    }

    private void StartQueues(int count, int depth, Action start)
    {
        try
        {
            for (var q = 0; q < count; q++) _queues.Add(new UblkQueue(this, q, depth));
            foreach (var q in _queues) q.Start();
            Task.WaitAll([.. _queues.Select(q => q.Fetched)], _options.CommandTimeout);
            start();
        }
        catch
        {
            foreach (var q in _queues) q.Release();
            Task.WaitAll([.. _queues.Select(q => q.Ended)], TimeSpan.FromSeconds(5));
            CloseServing();
            throw;
        }
        foreach (var q in _queues) q.Ended.ContinueWith(_ => OnQueueEnded(), TaskScheduler.Default);
    }

    private void OnQueueEnded()
    {
        // every queue ending by itself means the kernel aborted them: someone else stopped the device
        if (_queues.All(q => q.Ended.IsCompleted) && Interlocked.CompareExchange(ref _state, 1, 0) == 0)
        {
            CloseServing();
            _control.Dispose();
            _ended.TrySetResult();
        }
    }

    private async Task EndQueuesAsync(TimeSpan timeout)
    {
        var all = Task.WhenAll(_queues.Select(q => q.Ended));
        if (await Task.WhenAny(all, Task.Delay(timeout)).ConfigureAwait(false) == all) return;
        foreach (var q in _queues) q.Release();   // a tag the kernel never aborted: stop waiting for it
        await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(5))).ConfigureAwait(false);
    }

    private int _closed;

    private void CloseServing()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0) return;
        _stopping.Cancel();
        foreach (var q in _queues)
            if (q.Ended.IsCompleted) q.Dispose();   // a thread still inside io_uring_enter keeps its ring (process exit frees it)
        _char.Dispose();
    }

    /// <summary>Opens /dev/ublkcN, which devtmpfs/udev create just after ADD_DEV (and the old server may still hold it).</summary>
    private static FileDescriptorHandle OpenCharDevice(int id, TimeSpan timeout)
    {
        var path = $"/dev/ublkc{id}";
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var fd = LibC.open(path, LibC.O_RDWR | LibC.O_CLOEXEC);
            if (fd >= 0) return new FileDescriptorHandle(fd);
            var errno = Errno.Last;
            if (errno is not (2 or 16) || DateTime.UtcNow > deadline)
                throw new UblkException($"open {path}: {Errno.Describe(errno)}", errno);
            Thread.Sleep(50);
        }
    }

    internal void CountError() => Interlocked.Increment(ref _errors);

    internal void ReportRequestFailure(Exception e)
    {
        CountError();
        Failed?.Invoke(e);
    }

    internal void ReportQueueError(int queue, ushort tag, int errno) =>
        Failed?.Invoke(new UblkException($"{DevicePath} queue {queue} tag {tag}: the kernel refused a command: {Errno.Describe(errno)}", errno));

    internal void ReportQueueFailure(int queue, Exception e) =>
        Failed?.Invoke(new UblkException($"{DevicePath} queue {queue} failed: {e.Message}", 0, e));
}
