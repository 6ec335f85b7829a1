using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using IserBlockd.BlockDev.Devices;
using IserBlockd.BlockDev.Nbd;
using IserBlockd.BlockDev.Nbd.Protocol;
using IserBlockd.BlockDev.Nbd.Streams;
using IserBlockd.TestSupport;
using IserBlockd.Primitives.Native;

namespace IserBlockd.Benchmarks.Nbd;

/// <summary>
/// The NBD server's whole request path — socket, parser, device (in memory), reply writer — driven by
/// an in-process client over a socketpair, through the runtime's socket
/// engine. Each operation is one request; a batch of them is pipelined per invocation, as fio or the
/// kernel would. MemoryDiagnoser counts every thread's allocations, so "Allocated" covers the server
/// side too; it must be 0 B (or "-").
/// Run: dotnet run -c Release --project tests/IserBlockd.Benchmarks -- --filter '*NbdRequestPath*'
/// </summary>
[Config(typeof(NbdRequestPathConfig))]
[MemoryDiagnoser]
public class NbdRequestPathBenchmarks
{
    private const int Batch = 32;

    private NbdServer _server = null!;
    private Socket _client = null!;
    private Task _serving = null!;
    private byte[] _reads4K = null!, _writes4K = null!, _reads1M = null!, _replies = null!;
    private int _reads4KReplyBytes, _writes4KReplyBytes, _reads1MReplyBytes;

    [Params(false, true)]
    public bool StructuredReplies { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var device = new MemoryBlockDevice(256L << 20);
        device.Write(0, new byte[64 << 20]);
        _server = new NbdServer();
        var (client, serverEnd) = SocketPair.Create();
        _client = client;
        var transport = new SocketTransport(serverEnd);
        _serving = _server.ServeTransmissionAsync(transport, new NbdExport("", device), StructuredReplies);

        var readReplyHeader = StructuredReplies ? NbdOffsetDataChunk.PrefixSize : NbdSimpleReply.Size;
        _reads4K = Requests(NbdCommand.Read, 4096, Batch, out _);
        _reads4KReplyBytes = Batch * (readReplyHeader + 4096);
        _writes4K = Requests(NbdCommand.Write, 4096, Batch, out _);
        _writes4KReplyBytes = Batch * NbdSimpleReply.Size;
        _reads1M = Requests(NbdCommand.Read, 1 << 20, 4, out _);
        _reads1MReplyBytes = 4 * (readReplyHeader + (1 << 20));
        _replies = new byte[Math.Max(_reads4KReplyBytes, _reads1MReplyBytes)];
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _client.Shutdown(SocketShutdown.Both);
        _serving.GetAwaiter().GetResult();
        _client.Dispose();
        _server.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    [Benchmark(OperationsPerInvoke = Batch, Description = "4 KiB READ, 32 pipelined")]
    public void Read4K() => RoundTrip(_reads4K, _reads4KReplyBytes);

    [Benchmark(OperationsPerInvoke = Batch, Description = "4 KiB WRITE, 32 pipelined")]
    public void Write4K() => RoundTrip(_writes4K, _writes4KReplyBytes);

    [Benchmark(OperationsPerInvoke = 4, Description = "1 MiB READ, 4 pipelined")]
    public void Read1M() => RoundTrip(_reads1M, _reads1MReplyBytes);

    private void RoundTrip(byte[] requests, int replyBytes)
    {
        _client.Send(requests);
        var received = 0;
        while (received < replyBytes)
        {
            var n = _client.Receive(_replies.AsSpan(received, replyBytes - received));
            if (n == 0) throw new InvalidOperationException("the server closed the connection");
            received += n;
        }
    }

    private static byte[] Requests(NbdCommand command, int length, int count, out int size)
    {
        var payload = command == NbdCommand.Write ? length : 0;
        size = count * (NbdRequest.Size + payload);
        var bytes = new byte[size];
        for (var i = 0; i < count; i++)
        {
            var at = i * (NbdRequest.Size + payload);
            new NbdRequest(0, command, (ulong)i, (ulong)i * (ulong)length, (uint)length).Write(bytes.AsSpan(at));
            bytes.AsSpan(at + NbdRequest.Size, payload).Fill((byte)i);
        }
        return bytes;
    }
}

/// <summary>Short runs: the figure that matters here is Allocated.</summary>
public sealed class NbdRequestPathConfig : ManualConfig
{
    public NbdRequestPathConfig()
    {
        AddJob(Job.Default.WithWarmupCount(3).WithIterationCount(10).WithLaunchCount(1).WithId("short"));
        AddDiagnoser(MemoryDiagnoser.Default);
    }
}
