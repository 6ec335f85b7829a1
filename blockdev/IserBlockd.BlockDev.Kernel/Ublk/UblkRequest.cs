using System.Buffers;
using System.Runtime.CompilerServices;
using IserBlockd.BlockDev.Kernel.IoUring;
using IserBlockd.Primitives.Native;

namespace IserBlockd.BlockDev.Kernel.Ublk;

/// <summary>
/// The handling of one tag's requests, reused for every request the tag carries (no allocation per request):
/// the ublk operation mapped onto the block device as the NBD server maps NBD commands, with the data copied
/// between the kernel's request and a buffer of the device's own provider (UBLK_F_USER_COPY: pread/pwrite on
/// /dev/ublkcN at the tag's position), so on iSER it lands in registered memory.
/// </summary>
internal sealed class UblkRequest
{
    private readonly UblkQueue queue;
    private readonly ushort tag;
    private readonly long _position;
    private readonly Action _onCompleted;
    private ValueTask<int> _pending;

    public UblkRequest(UblkQueue queue, ushort tag)
    {
        this.queue = queue;
        this.tag = tag;
        _position = UblkCommands.UserCopyPosition(queue.QueueId, tag);
        _onCompleted = OnCompleted;
    }

    /// <summary>Handles the request the kernel just handed this tag; the answer goes to the queue when it is known.
    /// The pooled ValueTask is awaited through a cached continuation, so its box returns to the pool.</summary>
    public void Start(UblkIoDescriptor descriptor)
    {
        var handling = HandleAsync(descriptor);
        if (handling.IsCompleted)
        {
            queue.Answer(tag, handling.GetAwaiter().GetResult());
            return;
        }
        _pending = handling;
        handling.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(_onCompleted);   // answer on the completing thread, whatever context started it
    }

    private void OnCompleted()
    {
        var result = _pending.GetAwaiter().GetResult();   // never throws: HandleAsync turns failures into errnos
        _pending = default;
        queue.Answer(tag, result);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<int> HandleAsync(UblkIoDescriptor d)
    {
        var served = queue.Device;
        var device = served.BlockDevice;
        int result;
        try
        {
            var offset = (long)d.StartSector << 9;
            var length = (long)d.SectorCount << 9;
            var fua = (d.Flags & UblkIoFlags.Fua) != 0;
            switch (d.Op)
            {
                case UblkIoOp.Read:
                    using (var buffer = await device.Buffers.RentAsync((int)length, served.Stopping).ConfigureAwait(false))
                    {
                        await device.ReadAsync(offset, buffer.Memory, served.Stopping).ConfigureAwait(false);
                        Copy(buffer.Memory, toKernel: true);
                    }
                    result = (int)length;
                    break;
                case UblkIoOp.Write:
                    RefuseIfReadOnly(device);
                    using (var buffer = await device.Buffers.RentAsync((int)length, served.Stopping).ConfigureAwait(false))
                    {
                        Copy(buffer.Memory, toKernel: false);
                        await device.WriteAsync(offset, buffer.Memory, fua && device.HasNativeFua(), served.Stopping).ConfigureAwait(false);
                    }
                    if (fua && device.NeedsFlushForFua(isWrite: true)) await device.FlushAsync(served.Stopping).ConfigureAwait(false);
                    result = (int)length;
                    break;
                case UblkIoOp.Flush:
                    if (device.Features.HasFlag(BlockDeviceFeatures.Flush))
                        await device.FlushAsync(served.Stopping).ConfigureAwait(false);
                    result = 0;
                    break;
                case UblkIoOp.Discard when device.Features.HasFlag(BlockDeviceFeatures.Trim):
                    RefuseIfReadOnly(device);
                    await device.TrimAsync(offset, length, served.Stopping).ConfigureAwait(false);
                    result = 0;
                    break;
                case UblkIoOp.WriteZeroes when device.Features.HasFlag(BlockDeviceFeatures.WriteZeroes):
                    RefuseIfReadOnly(device);
                    await device.WriteZeroesAsync(offset, length, (d.Flags & UblkIoFlags.NoUnmap) == 0, served.Stopping).ConfigureAwait(false);
                    if (fua && device.NeedsFlushForFua(isWrite: false)) await device.FlushAsync(served.Stopping).ConfigureAwait(false);
                    result = 0;
                    break;
                default:
                    result = -(int)BlockError.NotSupported;
                    break;
            }
        }
        catch (BlockDeviceException e)
        {
            result = -(int)e.Error;
            served.CountError();
        }
        catch (Exception e)
        {
            result = -(int)BlockError.IoError;
            served.ReportRequestFailure(e);
        }
        return result;
    }

    private static void RefuseIfReadOnly(IBlockDevice device)
    {
        if (device.Features.HasFlag(BlockDeviceFeatures.ReadOnly))
            throw new BlockDeviceException(BlockError.PermissionDenied, "the device is read-only");
    }

    /// <summary>pwrite (a READ's data into the kernel's request) or pread (a WRITE's data out of it).</summary>
    private unsafe void Copy(Memory<byte> buffer, bool toKernel)
    {
        using var pin = buffer.Pin();
        var done = 0;
        while (done < buffer.Length)
        {
            var p = (byte*)pin.Pointer + done;
            var n = toKernel
                ? LibC.pwrite(queue.Device.CharFd, p, (nuint)(buffer.Length - done), _position + done)
                : LibC.pread(queue.Device.CharFd, p, (nuint)(buffer.Length - done), _position + done);
            if (n < 0)
            {
                var errno = Errno.Last;
                if (errno == Errno.EINTR) continue;
                throw new UblkException($"{(toKernel ? "pwrite" : "pread")} of tag {tag}'s data on ublkc: {Errno.Describe(errno)}", errno);
            }
            if (n == 0) throw new UblkException($"{(toKernel ? "pwrite" : "pread")} of tag {tag}'s data on ublkc: the request is shorter than its descriptor");
            done += (int)n;
        }
    }
}
