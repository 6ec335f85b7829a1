using System.Diagnostics;
using System.Net;
using IserBlockd.Rdma;
using IserBlockd.Rdma.Interop;
using IserBlockd.Transport.Iser;

namespace IserBlockd.RdmaProbe;

/// <summary>
/// rping's server side: per ping, RDMA-READ the client's source buffer, say go-ahead, RDMA-WRITE the data into the
/// client's sink buffer, say go-ahead; until the client disconnects. Works with <c>rping -c</c> and our client.
/// </summary>
internal static class RpingServer
{
    public static async Task<int> RunAsync(ProbeOptions options)
    {
        var maxSize = options.Sizes.Max();
        using var channel = RdmaEventChannel.Create();
        using var listener = channel.CreateId();
        listener.Bind(new IPEndPoint(options.Address, options.Port));
        listener.Listen();
        Console.WriteLine($"LISTENING {listener.LocalEndPoint}");

        var request = await listener.AcceptRequestAsync().WaitAsync(TimeSpan.FromSeconds(60));
        using var id = request.ConnectionRequest!;
        Console.WriteLine($"server: connect request from {id.RemoteEndPoint} on {id.Device}, private data " +
            $"{Convert.ToHexString(request.PrivateData.Span[..Math.Min(8, request.PrivateData.Length)])} " +
            $"({request.PrivateData.Length} bytes), responder resources {request.ResponderResources}, initiator depth {request.InitiatorDepth}");
        if (options.ExpectIserPrivateData)
        {
            if (!IserCmHeader.TryRead(request.PrivateData.Span, out var header) || header != IserCmHeader.Initiator)
            {
                id.Reject([]);
                throw new InvalidDataException($"expected the iSER CM header C0000000, got {Convert.ToHexString(request.PrivateData.Span)}");
            }
            Console.WriteLine($"server: iSER CM header flags {header.Flags}");
        }

        long bytes = 0;
        var pings = 0;
        using (var endpoint = RdmaEndpoint.Create(id, maxSize))
        {
            await id.AcceptAsync(new ConnectionParameters(InitiatorDepth: request.ResponderResources == 0 ? (byte)1 : request.ResponderResources),
                new IserCmHeader(IserCmFlags.None).ToArray()).WaitAsync(TimeSpan.FromSeconds(30));
            Console.WriteLine($"server: established (qp {endpoint.QueuePair.Number})");
            if (options.CheckKernelResources) KernelResources.ExpectPresent();

            var disconnect = id.WaitForDisconnectAsync();
            var loop = Stopwatch.StartNew();
            while (true)
            {
                var advert = await endpoint.ReceiveAsync(TimeSpan.FromSeconds(120), disconnect);
                if (advert == null) break; // the client disconnected
                var (address, rkey, size) = RpingMessages.ReadInfo(advert);
                if (size == 0 || size > (uint)maxSize)
                    throw new InvalidDataException($"ping {pings}: the client advertised {size} bytes, the server buffer holds {maxSize}");
                var data = endpoint.DataA.Memory[..(int)size];
                data.Span.Clear();
                await endpoint.RdmaAsync(IbvWrOpcode.RdmaRead, data, address, rkey);
                if (options.Verify)
                {
                    var bad = RpingMessages.FindPatternMismatch(data.Span, pings);
                    if (bad >= 0) throw new InvalidDataException($"ping {pings}: RDMA READ of {size} bytes returned wrong data at offset {bad}");
                }
                endpoint.SendBuffer.Memory.Span[..RpingMessages.InfoSize].Clear();
                await endpoint.SendAsync(RpingMessages.InfoSize, "go-ahead");

                var sink = await endpoint.ReceiveAsync(TimeSpan.FromSeconds(60))
                    ?? throw new InvalidOperationException($"ping {pings}: the client left before advertising its sink buffer");
                var (sinkAddress, sinkKey, sinkSize) = RpingMessages.ReadInfo(sink);
                // rping writes back strlen(data) + 1 bytes: the whole NUL-terminated ping.
                var length = Math.Min(data.Span.IndexOf((byte)0) + 1, (int)sinkSize);
                if (length <= 0) length = (int)Math.Min(size, sinkSize);
                await endpoint.RdmaAsync(IbvWrOpcode.RdmaWrite, data[..length], sinkAddress, sinkKey);
                await endpoint.SendAsync(RpingMessages.InfoSize, "go-ahead");
                bytes += size + length;
                pings++;
            }
            loop.Stop();
            var disconnected = await disconnect.WaitAsync(TimeSpan.FromSeconds(30));
            id.Disconnect(); // our half: moves the QP to the error state so nothing stays posted
            Console.WriteLine($"server: {RdmaCmEvent.Name(disconnected.Type)} after {pings} pings ({bytes} bytes in {loop.Elapsed.TotalSeconds:F2} s), " +
                $"completions dispatched {endpoint.Dispatcher.Completions}");
        }
        Console.WriteLine($"RESULT role=server pings={pings} bytes={bytes}");
        if (pings < options.MinimumPings)
            throw new InvalidOperationException($"only {pings} pings were served, expected at least {options.MinimumPings}");
        return 0;
    }
}
