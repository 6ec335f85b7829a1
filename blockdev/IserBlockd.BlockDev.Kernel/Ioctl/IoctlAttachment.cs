using System.Net.Sockets;
using IserBlockd.Primitives.Native;

namespace IserBlockd.BlockDev.Kernel.Ioctl;

/// <summary>
/// The legacy attach: NBD_SET_BLKSIZE, NBD_SET_SIZE_BLOCKS, NBD_SET_FLAGS, NBD_SET_TIMEOUT, one
/// NBD_SET_SOCK per connection, then NBD_DO_IT, which blocks for the life of the device and so runs on
/// a thread of its own. The device ends with this process; there is no RECONFIGURE on this path.
/// </summary>
internal sealed class IoctlAttachment
{
    private readonly FileDescriptorHandle _device;
    private readonly string _path;
    private readonly TaskCompletionSource _doItReturned = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private IoctlAttachment(FileDescriptorHandle device, string path)
    {
        _device = device;
        _path = path;
    }

    public static KernelNbdDevice Attach(KernelAttachRequest request, Func<Socket, CancellationToken, Task> serve)
    {
        var index = request.Index ?? FirstUnusedDevice();
        var path = "/dev/nbd" + index;
        var fd = LibC.open(path, LibC.O_RDWR | LibC.O_CLOEXEC);
        if (fd < 0)
        {
            var errno = Errno.Last;
            throw new KernelNbdException($"open {path}: {Errno.Describe(errno)}" + (errno == 2 ? " (is the nbd module loaded?)" : ""), errno);
        }
        var attachment = new IoctlAttachment(new FileDescriptorHandle(fd), path);
        var pairs = new List<(FileDescriptorHandle KernelEnd, Socket ServerEnd)>();
        try
        {
            var blockSize = (ulong)request.LogicalBlockSize;
            NbdIoctl.Call(attachment._device, NbdIoctl.SetBlockSize, blockSize, $"NBD_SET_BLKSIZE {path}");
            NbdIoctl.Call(attachment._device, NbdIoctl.SetSizeBlocks, (ulong)request.Size / blockSize, $"NBD_SET_SIZE_BLOCKS {path}");
            NbdIoctl.Call(attachment._device, NbdIoctl.SetFlags, request.TransmissionFlags, $"NBD_SET_FLAGS {path}");
            NbdIoctl.Call(attachment._device, NbdIoctl.SetTimeout, (ulong)Math.Ceiling(request.IoTimeout.TotalSeconds), $"NBD_SET_TIMEOUT {path}");
            for (var i = 0; i < request.Connections; i++)
            {
                var pair = SocketPair.CreateForKernel();
                pairs.Add(pair);
                NbdIoctl.Call(attachment._device, NbdIoctl.SetSocket, (ulong)pair.KernelEnd.Fd,
                    $"NBD_SET_SOCK {path}" + (i == 0 ? " (EBUSY: the device is in use)" : ""));
            }
            foreach (var p in pairs) p.KernelEnd.Dispose();   // the kernel holds its own reference

            var device = new KernelNbdDevice(index, KernelAttachMethod.Ioctl, request, serve, attachment);
            foreach (var p in pairs) device.Serve(p.ServerEnd);
            pairs.Clear();
            new Thread(attachment.RunDoIt) { IsBackground = true, Name = "nbd-do-it " + path }.Start();
            return device;
        }
        catch
        {
            foreach (var p in pairs) { p.KernelEnd.Dispose(); p.ServerEnd.Dispose(); }
            try { NbdIoctl.Call(attachment._device, NbdIoctl.ClearSocket, 0, "NBD_CLEAR_SOCK"); } catch (KernelNbdException) { }
            attachment._device.Dispose();
            throw;
        }
    }

    /// <summary>NBD_DISCONNECT (the kernel sends NBD_CMD_DISC), then waits for NBD_DO_IT to return.</summary>
    public async Task DisconnectAsync(TimeSpan timeout)
    {
        NbdIoctl.Call(_device, NbdIoctl.Disconnect, 0, $"NBD_DISCONNECT {_path}");
        try { await _doItReturned.Task.WaitAsync(timeout).ConfigureAwait(false); }
        catch (TimeoutException)
        {
            throw new KernelNbdException($"{_path}: NBD_DO_IT did not return within {timeout} of NBD_DISCONNECT");
        }
    }

    private void RunDoIt()
    {
        try
        {
            // returns when the device is disconnected (0) or its connections failed (an errno)
            try { NbdIoctl.Call(_device, NbdIoctl.DoIt, 0, $"NBD_DO_IT {_path}"); }
            catch (KernelNbdException) { }
            try { NbdIoctl.Call(_device, NbdIoctl.ClearQueue, 0, "NBD_CLEAR_QUE"); } catch (KernelNbdException) { }
            try { NbdIoctl.Call(_device, NbdIoctl.ClearSocket, 0, "NBD_CLEAR_SOCK"); } catch (KernelNbdException) { }
        }
        finally
        {
            _device.Dispose();
            _doItReturned.TrySetResult();
        }
    }

    /// <summary>The first /sys/block/nbdN without a serving process (no "pid" attribute).</summary>
    private static uint FirstUnusedDevice()
    {
        for (uint i = 0; i < 1024; i++)
        {
            var sys = "/sys/block/nbd" + i;
            if (!Directory.Exists(sys)) break;
            if (!File.Exists(sys + "/pid")) return i;
        }
        throw new KernelNbdException("no unused /dev/nbdN (load the nbd module, or raise nbds_max)");
    }
}
