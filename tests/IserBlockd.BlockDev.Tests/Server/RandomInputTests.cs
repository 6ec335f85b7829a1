using System.Net.Sockets;
using FsCheck;
using FsCheck.Fluent;
using IserBlockd.BlockDev.Devices;
using IserBlockd.BlockDev.Nbd;
using IserBlockd.BlockDev.Nbd.Protocol;
using IserBlockd.BlockDev.Tests.Support;
using IserBlockd.TestSupport;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;
using IserBlockd.Primitives.Native;

namespace IserBlockd.BlockDev.Tests.Server;

/// <summary>
/// Arbitrary bytes from the network, in the handshake and in transmission: the server answers or hangs
/// up on that client, never fails unexpectedly, and keeps serving. Inputs start with valid framing
/// often enough to reach deep into the parsers.
/// </summary>
public class RandomInputTests(ITestOutputHelper output)
{
    private static Gen<byte[]> TransmissionStreams() =>
        Gen.Frequency(
            (1, ArbMap.Default.GeneratorFor<byte[]>()),
            (3, from requests in Gen.ListOf(Request()).Select(l => l.Take(20).ToArray())
                from tail in ArbMap.Default.GeneratorFor<byte[]>()
                select requests.SelectMany(r => r).Concat(tail).ToArray()));

    private static Gen<byte[]> Request() =>
        from command in Gen.Elements<ushort>(0, 1, 2, 3, 4, 5, 6, 7, 99)
        from flags in Gen.Elements<ushort>(0, 1, 2, 4, 16, 0xffff)
        from offset in Gen.Elements(0ul, 512ul, 4096ul, 1ul, (16ul << 20) - 512, ulong.MaxValue)
        from length in Gen.Elements(0u, 512u, 4096u, 1u, 1u << 20, 64u << 20, uint.MaxValue)
        from payload in Gen.Choose(0, 4096)
        select Encode(new NbdRequest((NbdCommandFlags)flags, (NbdCommand)command, 1, offset, length), command == 1 ? Math.Min(payload, (int)Math.Min(length, 4096)) : 0);

    private static byte[] Encode(NbdRequest request, int payload)
    {
        var bytes = new byte[NbdRequest.Size + payload];
        request.Write(bytes);
        return bytes;
    }

    [Fact]
    public async Task Transmission_phase_survives_arbitrary_bytes()
    {
        var device = new MemoryBlockDevice(16 << 20, new MemoryBlockDeviceOptions { MaxTransferBytes = 1 << 20 });
        var export = new NbdExport("", device);
        var logs = new TestLoggerFactory(null, LogLevel.Warning);
        await using var server = new NbdServer(new NbdServerOptions { MaxDiscardedPayload = 2 << 20 }, logs);
        var samples = TransmissionStreams().Sample(50, new Rnd(7, 0x9e3779b97f4a7c15), 150);
        foreach (var bytes in samples)
        {
            var (client, serverEnd) = SocketPair.Create();
            var serving = server.ServeTransmissionAsync(serverEnd, export);
            using (client)
            {
                try { client.Send(bytes); }
                catch (SocketException) { } // the server may hang up first
                client.Shutdown(SocketShutdown.Send);
                Drain(client);
            }
            await serving.WaitAsync(TimeSpan.FromSeconds(10)); // completes, never faults
        }
        Assert.DoesNotContain(logs.Lines, l => l.StartsWith("Error:"));
        using var check = RawNbdClient.ForTransmission(Connect(server, export, out var last), 16 << 20);
        Assert.Equal(0u, check.WriteSync(0, new byte[4096]).Error);
        check.Disconnect();
        await last.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Handshake_survives_arbitrary_options()
    {
        var logs = new TestLoggerFactory(null, LogLevel.Warning);
        await using var server = new InProcessNbdServer(output, new NbdServerOptions { HandshakeTimeout = TimeSpan.FromSeconds(5) },
            new NbdExport("", new MemoryBlockDevice(1 << 20)));
        var options =
            from option in Gen.Elements<uint>(1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 0xdead)
            from data in ArbMap.Default.GeneratorFor<byte[]>()
            from lie in Gen.Elements(0, 0, 0, 1, -1, 1000)
            select Option(option, data, lie);
        foreach (var stream in Gen.ListOf(options).Select(l => l.Take(8).SelectMany(o => o).ToArray()).Sample(50, new Rnd(11, 0x9e3779b97f4a7c15), 100))
        {
            using var client = RawNbdClient.Connect(server.SocketPath);
            try { client.SendRaw(stream); }
            catch (SocketException) { }
            client.Socket.Shutdown(SocketShutdown.Send);
            Drain(client.Socket);
        }
        await Wait.Until(() => server.Server.ConnectionCount == 0);
        Assert.DoesNotContain(server.Logs.Lines, l => l.StartsWith("Error:"));
        using var good = server.Connect();
        Assert.Equal(0u, good.ReadSync(0, 512).Error);
    }

    private static byte[] Option(uint option, byte[] data, int lie)
    {
        var bytes = new byte[NbdOptionHeader.Size + data.Length];
        new NbdOptionHeader((NbdOption)option, (uint)Math.Max(0, data.Length + lie)).Write(bytes);
        data.CopyTo(bytes, NbdOptionHeader.Size);
        return bytes;
    }

    private static Socket Connect(NbdServer server, NbdExport export, out Task serving)
    {
        var (client, serverEnd) = SocketPair.Create();
        serving = server.ServeTransmissionAsync(serverEnd, export);
        return client;
    }

    private static void Drain(Socket socket)
    {
        socket.ReceiveTimeout = 10_000;
        var sink = new byte[65536];
        try
        {
            while (socket.Receive(sink) > 0) { }
        }
        catch (SocketException) { }
    }
}
