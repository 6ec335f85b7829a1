using System.Diagnostics;
using System.Net;
using IserBlockd.Rdma;
using IserBlockd.Rdma.Interop;
using IserBlockd.Transport.Iser;

namespace IserBlockd.RdmaProbe;

/// <summary>
/// rping's client side: per ping, advertise the source buffer (the server RDMA-READs it), then the sink buffer (the
/// server RDMA-WRITEs the data back into it), then compare. Works against <c>rping -s</c> and our server.
/// </summary>
internal static class RpingClient
{
    public static async Task<int> RunAsync(ProbeOptions options)
    {
        var maxSize = options.Sizes.Max();
        var timer = Stopwatch.StartNew();
        var privateData = options.SendIserPrivateData ? IserCmHeader.Initiator.ToArray() : [];

        using var channel = RdmaEventChannel.Create();
        using var id = channel.CreateId();
        var destination = new IPEndPoint(options.Address, options.Port);
        await id.ResolveAddressAsync(destination, null, TimeSpan.FromSeconds(5));
        await id.ResolveRouteAsync(TimeSpan.FromSeconds(5));
        Console.WriteLine($"client: resolved {destination} via {id.Device} ({id.LocalEndPoint})");

        using (var endpoint = RdmaEndpoint.Create(id, maxSize))
        {
            var limits = endpoint.Device.QueryLimits();
            var accepted = await id.ConnectAsync(new ConnectionParameters(ResponderResources: (byte)Math.Min(limits.MaxQpReadAtomic, 16)), privateData)
                .WaitAsync(TimeSpan.FromSeconds(30));
            var connectTime = timer.Elapsed;
            Console.WriteLine($"client: connected (qp {endpoint.QueuePair.Number}, private data sent {Convert.ToHexString(privateData)}, " +
                $"accept private data {Convert.ToHexString(accepted.Span[..Math.Min(8, accepted.Length)])}) in {connectTime.TotalMilliseconds:F0} ms");

            if (options.CheckKernelResources) KernelResources.ExpectPresent();

            long bytes = 0;
            var loop = Stopwatch.StartNew();
            for (var ping = 0; ping < options.Count; ping++)
            {
                var size = options.Sizes[ping % options.Sizes.Count];
                var source = endpoint.DataA.Memory[..size];
                var sink = endpoint.DataB.Memory[..size];
                RpingMessages.FillPattern(source.Span, ping);
                sink.Span.Clear();

                RegisteredBuffer.TryGetSegment(source, out var src);
                RpingMessages.WriteInfo(endpoint.SendBuffer.Memory.Span, src.Address, src.RemoteKey, (uint)size);
                await endpoint.SendAsync(RpingMessages.InfoSize, "the source buffer advertisement");
                Expect(await endpoint.ReceiveAsync(TimeSpan.FromSeconds(60)), "go-ahead after the RDMA READ", ping);

                RegisteredBuffer.TryGetSegment(sink, out var dst);
                RpingMessages.WriteInfo(endpoint.SendBuffer.Memory.Span, dst.Address, dst.RemoteKey, (uint)size);
                await endpoint.SendAsync(RpingMessages.InfoSize, "the sink buffer advertisement");
                Expect(await endpoint.ReceiveAsync(TimeSpan.FromSeconds(60)), "go-ahead after the RDMA WRITE", ping);

                var mismatch = sink.Span.CommonPrefixLength(source.Span);
                if (mismatch != size)
                    throw new InvalidDataException($"ping {ping} ({size} bytes): the data written back differs from the data read at offset {mismatch}");
                bytes += 2L * size;
            }
            loop.Stop();
            Console.WriteLine($"client: {options.Count} pings verified, sizes {string.Join(",", options.Sizes)}; " +
                $"{bytes} bytes moved by RDMA in {loop.Elapsed.TotalSeconds:F2} s ({bytes / 1e6 / loop.Elapsed.TotalSeconds:F1} MB/s, " +
                $"{loop.Elapsed.TotalMilliseconds / options.Count:F2} ms/ping); completions dispatched {endpoint.Dispatcher.Completions}");

            id.Disconnect();
            var disconnected = await id.WaitForDisconnectAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Console.WriteLine($"client: {RdmaCmEvent.Name(disconnected.Type)}");
            Console.WriteLine($"RESULT role=client pings={options.Count} bytes={bytes} connect_ms={connectTime.TotalMilliseconds:F0} " +
                $"loop_s={loop.Elapsed.TotalSeconds:F3} mbps={bytes / 1e6 / loop.Elapsed.TotalSeconds:F1}");
        }
        return 0;
    }

    private static void Expect(byte[]? message, string what, int ping)
    {
        if (message == null) throw new InvalidOperationException($"ping {ping}: the connection closed while waiting for the {what}");
        if (message.Length != RpingMessages.InfoSize)
            throw new InvalidDataException($"ping {ping}: the {what} has {message.Length} bytes, expected {RpingMessages.InfoSize}");
    }
}
