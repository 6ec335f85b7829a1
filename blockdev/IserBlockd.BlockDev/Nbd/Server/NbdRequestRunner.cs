using System.Runtime.CompilerServices;
using IserBlockd.BlockDev.Nbd.Protocol;
using Microsoft.Extensions.Logging;

namespace IserBlockd.BlockDev.Nbd;

/// <summary>
/// Runs validated requests on the device: one pooled async method per request, which records the
/// outcome in the request; the request then goes to the reply writer.
/// </summary>
/// <remarks>FUA as <see cref="FuaEmulation"/> decides: a WRITE carries the device's own FUA when it has one;
/// otherwise, and for TRIM and WRITE_ZEROES (WRITE SAME has no FUA bit), the request is followed by a
/// flush before it is answered.</remarks>
internal sealed class NbdRequestRunner(NbdExport export, NbdReplyWriter replies, ILogger logger)
{
    private const int MaxErrorMessageChars = 512;
    private const int ZeroingChunk = 1 << 20;
    /// <summary>Extents per BLOCK_STATUS reply; the client asks again for the rest.</summary>
    internal const int MaxExtents = 128;
    private static readonly ReadOnlyMemory<byte> BadAllocationAnswer = "the device described allocation inconsistently"u8.ToArray();

    private readonly IBlockDevice _device = export.Device;
    private readonly bool _deviceFua = export.Device.HasNativeFua();
    private readonly bool _deviceWriteZeroes = (export.Device.Features & BlockDeviceFeatures.WriteZeroes) != 0;
    private readonly bool _deviceAllocation = (export.Device.Features & BlockDeviceFeatures.AllocationStatus) != 0;
    private readonly bool _devicePrefetch = (export.Device.Features & BlockDeviceFeatures.Prefetch) != 0;
    private readonly int _maximum = (int)Math.Min(export.BlockSizes.Maximum, int.MaxValue);
    private readonly long _blockSize = export.BlockSizes.Minimum;

    /// <summary>Starts the request; its reply is queued when the device is done with it.</summary>
    public void Start(NbdInFlightRequest request) => request.Await(RunAsync(request));

    /// <summary>The reply of a request refused before it ran.</summary>
    public void Refuse(NbdInFlightRequest request) => replies.Enqueue(request);

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask RunAsync(NbdInFlightRequest request)
    {
        try
        {
            var fua = request.IsFua;
            if (request.Length > 0)
            {
                switch (request.Command)
                {
                    case NbdCommand.Read:
                        replies.PrepareRead(request);
                        await _device.ReadAsync(request.Offset, request.Buffer!.Memory, CancellationToken.None).ConfigureAwait(false);
                        NbdReplyWriter.ReadDone(request);
                        break;
                    case NbdCommand.Write:
                        await _device.WriteAsync(request.Offset, request.Buffer!.Memory, fua && _deviceFua, CancellationToken.None).ConfigureAwait(false);
                        break;
                    case NbdCommand.Trim:
                        await _device.TrimAsync(request.Offset, request.Length, CancellationToken.None).ConfigureAwait(false);
                        break;
                    case NbdCommand.WriteZeroes when _deviceWriteZeroes:
                        var mayUnmap = (request.Flags & NbdCommandFlags.NoHole) == 0;
                        await _device.WriteZeroesAsync(request.Offset, request.Length, mayUnmap, CancellationToken.None).ConfigureAwait(false);
                        break;
                    case NbdCommand.WriteZeroes:
                        await WriteZeroesWithWritesAsync(request.Offset, request.Length).ConfigureAwait(false);
                        break;
                    case NbdCommand.Cache when _devicePrefetch:
                        await _device.PrefetchAsync(request.Offset, request.Length, CancellationToken.None).ConfigureAwait(false);
                        break;
                    case NbdCommand.BlockStatus:
                        await DescribeAllocationAsync(request).ConfigureAwait(false);
                        break;
                }
            }
            if (request.Command == NbdCommand.Flush || (fua && _device.NeedsFlushForFua(request.Command == NbdCommand.Write)))
                await _device.FlushAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Fail(request, e);
        }
    }

    /// <summary>BLOCK_STATUS for <c>base:allocation</c>: the device's extents, checked (at least one, each
    /// non-empty and block-aligned, together within the request), or all data for a device that cannot tell.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask DescribeAllocationAsync(NbdInFlightRequest request)
    {
        var extents = request.Extents ??= new BlockExtent[MaxExtents];
        var room = (request.Flags & NbdCommandFlags.ReqOne) != 0 ? 1 : extents.Length;
        if (!_deviceAllocation)
        {
            extents[0] = new BlockExtent(request.Length, BlockAllocation.Data);
            request.ExtentCount = 1;
            return;
        }
        var count = await _device.GetAllocationAsync(request.Offset, request.Length, extents.AsMemory(0, room), CancellationToken.None).ConfigureAwait(false);
        long total = 0;
        var valid = count >= 1 && count <= room;
        for (var i = 0; valid && i < count; i++)
        {
            var length = extents[i].Length;
            valid = length > 0 && length % _blockSize == 0;
            total += length;
        }
        if (!valid || total > request.Length)
        {
            request.Fail(BlockError.IoError, BadAllocationAnswer);
            return;
        }
        request.ExtentCount = count;
    }

    /// <summary>WRITE_ZEROES for a device without it: ordinary writes from one zeroed buffer.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteZeroesWithWritesAsync(long offset, long length)
    {
        var chunk = (int)Math.Min(length, Math.Min(_maximum, ZeroingChunk));
        using var zeroes = await _device.Buffers.RentAsync(chunk, CancellationToken.None).ConfigureAwait(false);
        zeroes.Memory.Span.Clear();
        while (length > 0)
        {
            var count = (int)Math.Min(length, chunk);
            await _device.WriteAsync(offset, zeroes.Memory[..count], false, CancellationToken.None).ConfigureAwait(false);
            offset += count;
            length -= count;
        }
    }

    private void Fail(NbdInFlightRequest request, Exception exception)
    {
        switch (exception)
        {
            case BlockDeviceException device:
                request.Fail(device.Error, EncodeMessage(device.Message));
                break;
            case OperationCanceledException:
                request.Fail(BlockError.Shutdown, EncodeMessage("the operation was cancelled"));
                break;
            default:
                NbdLog.DeviceFailure(logger, exception, export, request.Command, request.Offset, request.Length);
                request.Fail(BlockError.IoError, EncodeMessage(exception.Message));
                break;
        }
    }

    private static ReadOnlyMemory<byte> EncodeMessage(string message) =>
        System.Text.Encoding.UTF8.GetBytes(message.Length > MaxErrorMessageChars ? message[..MaxErrorMessageChars] : message);
}
