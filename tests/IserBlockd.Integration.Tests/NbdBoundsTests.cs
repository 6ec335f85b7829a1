using System.Diagnostics;
using System.Text.Json;
using IserBlockd.TestSupport;
using Xunit.Abstractions;

namespace IserBlockd.Integration.Tests;

/// <summary>
/// Hostile NBD peers against real servers: a client that pipelines the largest READs and never reads a reply
/// beside fio on another LUN of the same daemon; the connection limit and the handshake timeout with nbdinfo.
/// </summary>
[Trait("Category", "RealPeer")]
public sealed class NbdBoundsTests(ITestOutputHelper output)
{
    private const long Size = 64L << 20;

    /// <summary>fio's nbd engine, random 256 KiB reads 16 deep for <paramref name="seconds"/>; bytes per second.</summary>
    private async Task<double> FioReadRateAsync(string uri, int seconds)
    {
        var json = await Tools.RunAsync("fio", "--name=b", "--ioengine=nbd", $"--uri={uri}", "--rw=randread", "--bs=256k",
            "--iodepth=16", $"--size={Size}", "--time_based", $"--runtime={seconds}", "--output-format=json");
        using var doc = JsonDocument.Parse(json[json.IndexOf('{')..]);
        var read = doc.RootElement.GetProperty("jobs")[0].GetProperty("read");
        Assert.Equal(0, doc.RootElement.GetProperty("jobs")[0].GetProperty("error").GetInt32());
        return read.GetProperty("bw_bytes").GetDouble();
    }

    [Fact]
    public async Task A_client_that_never_reads_its_replies_leaves_another_lun_its_throughput_and_is_cut_off_after_the_send_timeout()
    {
        const int sendTimeout = 20;
        await using var target = await TestTarget.StartAsync((1, Size, 512), (2, Size, 512));
        var data = Tools.RandomBytes((int)Size);
        await File.WriteAllBytesAsync(target.BackingFile(1), data);
        using var dir = new TempDirectory("bounds");
        int portA = FreePort.Next(), portB = FreePort.Next();
        var config = dir.File("iserblockd.json");
        File.WriteAllText(config, $$"""
            { "initiatorName": "{{TestTarget.InitiatorName}}", "controlSocket": "{{dir.File("run/control")}}",
              "nodes": [ { "name": "a", "portals": ["{{target.Portal}}"], "target": "{{target.Iqn}}", "transport": "tcp",
                           "luns": [ { "lun": 1, "nbd": { "listen": "127.0.0.1:{{portA}}", "exportName": "a", "sendTimeout": {{sendTimeout}} } },
                                     { "lun": 2, "nbd": { "listen": "127.0.0.1:{{portB}}", "exportName": "b" } } ] } ] }
            """);
        using var notify = new NotifySocket(dir.File("notify"));
        await using var daemon = ExternalProcess.Start(Executables.Iserblockd, ["run", "--config", config],
            new Dictionary<string, string> { ["NOTIFY_SOCKET"] = notify.Path });
        await notify.WaitForAsync("READY=1", TimeSpan.FromSeconds(60));
        var uriA = $"nbd://127.0.0.1:{portA}/a";
        var uriB = $"nbd://127.0.0.1:{portB}/b";
        using (var info = JsonDocument.Parse(await Tools.RunAsync("nbdinfo", "--json", uriA)))
            output.WriteLine($"export a: maximum block size {info.RootElement.GetProperty("exports")[0].GetProperty("block_size_maximum")}");

        var alone = await FioReadRateAsync(uriB, 6);

        var (hostile, size) = await RawNbdPeer.ConnectAsync(portA, "a");
        using (hostile)
        {
            var stalled = Stopwatch.StartNew();
            await hostile.PipelineReadsAsync(64, 32u << 20, size); // 2 GiB of READs asked for, none of it read
            await Task.Delay(1000);
            var beside = await FioReadRateAsync(uriB, 6);
            output.WriteLine($"fio randread 256k x16 on LUN 2: alone {alone / 1e6:0.0} MB/s, beside the hostile client {beside / 1e6:0.0} MB/s ({beside / alone:P0})");
            // Without bounds the hostile client pins the whole pool and fio on B stalls (0 MB/s). The machine is shared and
            // loaded (2 cores, parallel builds and tests), so the bound leaves room for noise between two 6 s runs.
            Assert.True(beside >= 0.3 * alone, $"beside the hostile client LUN 2 kept only {beside / alone:P0} of its throughput");

            await daemon.WaitForLineAsync(l => l.Contains("took up no reply", StringComparison.Ordinal), TimeSpan.FromSeconds(sendTimeout + 40));
            output.WriteLine($"hostile client cut off {stalled.Elapsed.TotalSeconds:0.0} s after it stopped reading");
            Assert.InRange(stalled.Elapsed.TotalSeconds, sendTimeout - 1, sendTimeout + 40);
            Assert.True(await hostile.DrainUntilClosedAsync(TimeSpan.FromSeconds(30)), "the hostile client is still connected");
        }

        // Its buffers came back: a well-behaved client reads all of LUN 1, byte for byte.
        await Tools.RunAsync("nbdcopy", uriA, dir.File("a.bin"));
        var readBack = await File.ReadAllBytesAsync(dir.File("a.bin"));
        Assert.True(data.AsSpan().SequenceEqual(readBack), "LUN 1 read back differs");

        daemon.Signal(15);
        Assert.Equal(0, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(60)));
    }

    [Fact]
    public async Task Clients_beyond_the_connection_limit_are_refused_and_silent_ones_are_dropped_after_the_handshake_timeout()
    {
        await using var target = await TestTarget.StartAsync((1, Size, 512));
        await using var export = await ExportProcess.StartAsync(target, 1, "--listen", $"127.0.0.1:{FreePort.Next()}",
            "--max-connections", "2", "--handshake-timeout", "3");
        var port = new Uri(export.Ready).Port;

        // A silent client (connected, greeting received, nothing sent) is dropped after the handshake timeout and
        // holds no connection slot meanwhile.
        var silentStarted = Stopwatch.StartNew();
        using var silent = await RawNbdPeer.ConnectSilentAsync(port);
        var (first, _) = await RawNbdPeer.ConnectAsync(port, "");
        var (second, _) = await RawNbdPeer.ConnectAsync(port, "");
        using (first)
        using (second)
        {
            for (var i = 0; i < 2; i++)
            {
                var refused = await ExternalProcess.RunAsync("nbdinfo", [export.Ready], TimeSpan.FromMinutes(1),
                    new Dictionary<string, string> { ["LIBNBD_DEBUG"] = "1" });
                Assert.NotEqual(0, refused.ExitCode);
                Assert.Contains("server replied with error to opt_go request", refused.StandardError);
                var why = refused.StandardError.Split('\n').First(l => l.Contains("maximum of 2", StringComparison.Ordinal)); // the server's message, in libnbd's debug output
                output.WriteLine(why);
            }
            Assert.True(await silent.DrainUntilClosedAsync(TimeSpan.FromSeconds(30)), "the silent client is still connected");
            output.WriteLine($"silent client dropped after {silentStarted.Elapsed.TotalSeconds:0.0} s");
            Assert.InRange(silentStarted.Elapsed.TotalSeconds, 2.5, 30);
        }
        // The limit is logged once per episode, not once per refused client.
        Assert.Equal(1, CountOccurrences(export.Process.StandardError, "has its maximum of 2 client connections"));
        await export.Process.WaitForLineAsync(l => l.Contains("did not finish within 3 s", StringComparison.Ordinal), TimeSpan.FromSeconds(10));

        // Both slots were given back when their clients closed.
        await WaitForAsync(async () => (await ExternalProcess.RunAsync("nbdinfo", ["--size", export.Ready], TimeSpan.FromMinutes(1))).ExitCode == 0);
        Assert.Equal(Size.ToString(System.Globalization.CultureInfo.InvariantCulture), (await Tools.RunAsync("nbdinfo", "--size", export.Ready)).Trim());
        Assert.Equal(0, await export.StopAsync());
    }

    private static int CountOccurrences(string text, string value)
    {
        var count = 0;
        for (var i = text.IndexOf(value, StringComparison.Ordinal); i >= 0; i = text.IndexOf(value, i + 1, StringComparison.Ordinal)) count++;
        return count;
    }

    private static async Task WaitForAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("condition not met within 30 s");
            await Task.Delay(200);
        }
    }
}
