using System.Diagnostics;
using System.Net;
using IserBlockd.Rdma;
using IserBlockd.Rdma.Completion;
using IserBlockd.Rdma.Interop;
using IserBlockd.Transport.Iser;

namespace IserBlockd.RdmaProbe;

/// <summary>
/// Pipelined RDMA WRITE throughput (the data path iSER READs use: the target writes into our registered buffers):
/// the server advertises one registered buffer; the client keeps <c>--depth</c> writes of it in flight, one signaled
/// completion each, drained in batches by the dispatcher; then it RDMA-READs the buffer back and compares.
/// Comparable with perftest's <c>ib_write_bw -R</c> on the same device.
/// </summary>
internal static class WriteBandwidth
{
    public static async Task<int> ServeAsync(ProbeOptions options)
    {
        var size = options.Sizes.Max();
        using var channel = RdmaEventChannel.Create();
        using var listener = channel.CreateId();
        listener.Bind(new IPEndPoint(options.Address, options.Port));
        listener.Listen();
        Console.WriteLine($"LISTENING {listener.LocalEndPoint}");
        var request = await listener.AcceptRequestAsync().WaitAsync(TimeSpan.FromSeconds(60));
        using var id = request.ConnectionRequest!;
        using (var endpoint = RdmaEndpoint.Create(id, size))
        {
            await id.AcceptAsync(new ConnectionParameters(InitiatorDepth: 1, ResponderResources: request.InitiatorDepth == 0 ? (byte)1 : request.InitiatorDepth),
                new IserCmHeader(IserCmFlags.None).ToArray()).WaitAsync(TimeSpan.FromSeconds(30));
            var disconnect = id.WaitForDisconnectAsync();
            var target = endpoint.DataA.Memory[..size];
            target.Span.Clear();
            RegisteredBuffer.TryGetSegment(target, out var segment);
            RpingMessages.WriteInfo(endpoint.SendBuffer.Memory.Span, segment.Address, segment.RemoteKey, (uint)size);
            await endpoint.SendAsync(RpingMessages.InfoSize, "the target buffer advertisement");
            var e = await disconnect.WaitAsync(TimeSpan.FromSeconds(240));
            id.Disconnect();
            Console.WriteLine($"server: {RdmaCmEvent.Name(e.Type)}; buffer starts with {Convert.ToHexString(target.Span[..8])}");
        }
        return 0;
    }

    public static async Task<int> RunAsync(ProbeOptions options)
    {
        var size = options.Sizes.Max();
        using var channel = RdmaEventChannel.Create();
        using var id = channel.CreateId();
        await id.ResolveAddressAsync(new IPEndPoint(options.Address, options.Port), null, TimeSpan.FromSeconds(5));
        await id.ResolveRouteAsync(TimeSpan.FromSeconds(5));
        using (var endpoint = RdmaEndpoint.Create(id, size, sendDepth: options.Depth + 4))
        {
            await id.ConnectAsync(new ConnectionParameters(), IserCmHeader.Initiator.ToArray()).WaitAsync(TimeSpan.FromSeconds(30));
            var advert = await endpoint.ReceiveAsync(TimeSpan.FromSeconds(30))
                ?? throw new InvalidOperationException("the server closed before advertising its buffer");
            var (remoteAddress, remoteKey, remoteSize) = RpingMessages.ReadInfo(advert);
            if (remoteSize < size) throw new InvalidOperationException($"the server's buffer has {remoteSize} bytes, {size} needed");

            var source = endpoint.DataA.Memory[..size];
            Random.Shared.NextBytes(source.Span);
            // Completion-driven pipeline: each completion (on the event loop thread) posts the next write.
            var pipeline = new WritePipeline(endpoint, source, remoteAddress, remoteKey, options.Count);
            pipeline.WorkRequestId = endpoint.Register(pipeline);

            var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
            var timer = Stopwatch.StartNew();
            pipeline.Start(Math.Min(options.Depth, options.Count));
            await pipeline.Completed.WaitAsync(TimeSpan.FromSeconds(240));
            timer.Stop();
            // Every thread counts (the event loop runs the dispatcher and the handler that posts the next write).
            var allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;

            var check = endpoint.DataB.Memory[..size];
            check.Span.Clear();
            await endpoint.RdmaAsync(IbvWrOpcode.RdmaRead, check, remoteAddress, remoteKey);
            var same = check.Span.CommonPrefixLength(source.Span);
            if (same != size) throw new InvalidDataException($"the server's buffer differs from what was written at offset {same}");

            var bytes = (long)size * options.Count;
            var mbps = bytes / 1e6 / timer.Elapsed.TotalSeconds;
            Console.WriteLine($"client: {options.Count} RDMA WRITEs of {size} bytes, {options.Depth} in flight: {bytes} bytes in " +
                $"{timer.Elapsed.TotalSeconds:F2} s = {mbps:F1} MB/s; read back and verified; completions dispatched {endpoint.Dispatcher.Completions}");
            id.Disconnect();
            await id.WaitForDisconnectAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Console.WriteLine($"client: managed allocations while the writes ran: {allocated} bytes in all, {allocated / options.Count} per write");
            Console.WriteLine($"RESULT role=bw-client size={size} count={options.Count} depth={options.Depth} seconds={timer.Elapsed.TotalSeconds:F3} " +
                $"mbps={mbps:F1} allocated_per_write={allocated / options.Count}");
        }
        return 0;
    }

    /// <summary>
    /// Keeps writes in flight until <c>count</c> have completed: the first window is posted by the caller, every
    /// later write by the completion handler of an earlier one (the event loop thread), with no thread hop.
    /// </summary>
    private sealed class WritePipeline(RdmaEndpoint endpoint, Memory<byte> source, ulong remoteAddress, uint remoteKey, int count)
        : IWorkCompletionHandler
    {
        private readonly TaskCompletionSource _completed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _posted;
        private int _done;

        public ulong WorkRequestId;

        public Task Completed => _completed.Task;

        public void Start(int window)
        {
            for (var i = 0; i < window; i++) PostNext();
        }

        private void PostNext()
        {
            if (Interlocked.Increment(ref _posted) > count) return;
            endpoint.PostSend(IbvWrOpcode.RdmaWrite, source, remoteAddress, remoteKey, WorkRequestId);
        }

        public void OnWorkCompletion(in IbvWc completion)
        {
            if (completion.Status != IbvWcStatus.Success)
            {
                _completed.TrySetException(new WorkCompletionException(
                    $"RDMA WRITE failed: {WorkCompletionException.Describe(completion.Status)}", completion.Status, completion.VendorError));
                return;
            }
            if (Interlocked.Increment(ref _done) == count) _completed.TrySetResult();
            else PostNext();
        }
    }
}
