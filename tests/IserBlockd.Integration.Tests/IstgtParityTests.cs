using System.Text.Json;
using IserBlockd.Daemon.Control;
using IserBlockd.TestSupport;
using IserBlockd.TestSupport.Istgt;
using Xunit.Abstractions;

namespace IserBlockd.Integration.Tests;

/// <summary>
/// A second target: what works against tgtd works against istgt (started here on a free port), with the real
/// executables: <c>iserblockctl discover</c> and <c>inquiry</c>, <c>iserblockd export</c> under fio verify
/// (4 KiB to 1 MiB) and nbdcopy, and the daemon mapping an istgt LUN to an NBD socket from its configuration.
/// </summary>
[Trait("Category", "RealPeer")]
public sealed class IstgtParityTests(ITestOutputHelper output)
{
    private const long Size = 64L << 20;
    private const string Initiator = "iqn.2024-01.org.iserblockd:istgt-parity";

    private async Task<ProcessResult> Ctl(params string[] args)
    {
        var result = await ExternalProcess.RunAsync(Executables.Iserblockctl, args, TimeSpan.FromSeconds(60));
        output.WriteLine($"$ iserblockctl {string.Join(' ', args)}\n[exit {result.ExitCode}]\n{result.StandardOutput}{result.StandardError}");
        return result;
    }

    [Fact]
    public async Task Iserblockctl_discover_and_inquiry_against_istgt()
    {
        await using var istgt = await IstgtServer.StartAsync(Size);

        var discover = await Ctl("discover", istgt.Portal, "--initiator-name", Initiator, "--transport", "tcp");
        Assert.Equal(0, discover.ExitCode);
        var line = Assert.Single(discover.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Matches($@"^127\.0\.0\.1:{istgt.Port},\d+ {istgt.TargetName}$", line);

        var inquiry = await Ctl("inquiry", "--portal", istgt.Portal, "--target", istgt.TargetName, "--lun", "0", "--initiator-name", Initiator);
        Assert.Equal(0, inquiry.ExitCode);
        var fields = inquiry.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(':', 2)).ToLookup(p => p[0].Trim(), p => p[1].Trim());
        Assert.Equal("FreeBSD", fields["Vendor"].Single());
        Assert.Equal($"{Size} bytes", fields["Capacity"].Single());
        Assert.Equal("512", fields["Logical block size"].Single());

        var json = await Ctl("inquiry", "-p", istgt.Portal, "-T", istgt.TargetName, "-I", Initiator, "-o", "json");
        Assert.Equal(0, json.ExitCode); // without --lun: the first disk LUN
        using var doc = JsonDocument.Parse(json.StandardOutput);
        Assert.Equal((ulong)Size, doc.RootElement.GetProperty("capacityBytes").GetUInt64());
        Assert.Equal(0, doc.RootElement.GetProperty("lun").GetInt32());
        Assert.DoesNotContain("R_bit", istgt.Log);
    }

    [Fact]
    public async Task Export_of_an_istgt_lun_passes_fio_verify_and_nbdcopy_round_trips()
    {
        await using var istgt = await IstgtServer.StartAsync(Size);
        using var dir = new TempDirectory("istgt-export");
        await using var export = await ExportProcess.StartAsync(istgt.Portal, istgt.TargetName, 0,
            "--socket", dir.File("nbd.sock"));

        var info = await Tools.RunAsync("nbdinfo", "--json", export.Ready);
        Assert.Contains($"\"export-size\": {Size}", info);
        await Tools.FioVerifyAsync(export.Ready, "48M", iodepth: 8, rw: "randwrite", bs: "4k-1m", "--blockalign=4k");
        await Tools.FioVerifyAsync(export.Ready, "16M", iodepth: 4, rw: "write", bs: "1M");
        // At QD32 the receive loop holds its wake-ups for several of istgt's answers (ReceiveCoalescing): the bytes
        // held for must come from istgt's own way of answering, not tgtd's.
        await Tools.FioVerifyAsync(export.Ready, "32M", iodepth: 32, rw: "randwrite", bs: "4k");

        var source = dir.File("source.bin");
        File.WriteAllBytes(source, Tools.RandomBytes((int)Size));
        await Tools.RunAsync("nbdcopy", source, export.Ready);
        await Tools.RunAsync("nbdcopy", export.Ready, dir.File("back.bin"));
        await Tools.RunAsync("cmp", source, dir.File("back.bin"));

        Assert.Equal(0, await export.StopAsync());
        // flushed before the logout: istgt's backing file holds what was written
        await Tools.RunAsync("cmp", source, istgt.BackingFile);
        Assert.DoesNotContain("timed out", export.Process.StandardError);
        Assert.DoesNotContain("R_bit", istgt.Log);
    }

    [Fact]
    public async Task Daemon_maps_an_istgt_lun_from_its_configuration_to_an_nbd_socket()
    {
        await using var istgt = await IstgtServer.StartAsync(Size);
        using var dir = new TempDirectory("istgt-daemon");
        var socket = dir.File("istgt.sock");
        var config = dir.File("iserblockd.json");
        File.WriteAllText(config, $$"""
            {
              "initiatorName": "{{Initiator}}",
              "controlSocket": "{{dir.File("run/control")}}",
              "nodes": [
                { "name": "freebsd", "portals": ["{{istgt.Portal}}"], "target": "{{istgt.TargetName}}", "transport": "tcp",
                  "operational": { "headerDigest": "CRC32C,None", "dataDigest": "CRC32C,None" },
                  "luns": [ { "lun": 0, "nbd": { "socket": "{{socket}}", "exportName": "disk" } } ] }
              ]
            }
            """);
        using var notify = new NotifySocket(dir.File("notify"));
        await using var daemon = ExternalProcess.Start(Executables.Iserblockd, ["run", "--config", config],
            new Dictionary<string, string> { ["NOTIFY_SOCKET"] = notify.Path });
        await notify.WaitForAsync("READY=1", TimeSpan.FromSeconds(60));

        var uri = $"nbd+unix:///disk?socket={socket}";
        Assert.Contains($"\"export-size\": {Size}", await Tools.RunAsync("nbdinfo", "--json", uri));
        await Tools.FioVerifyAsync(uri, "32M", iodepth: 8, rw: "randwrite", bs: "4k-1m", "--blockalign=4k");
        var source = dir.File("source.bin");
        File.WriteAllBytes(source, Tools.RandomBytes((int)Size));
        await Tools.RunAsync("nbdcopy", source, uri);
        await Tools.RunAsync("nbdcopy", uri, dir.File("back.bin"));
        await Tools.RunAsync("cmp", source, dir.File("back.bin"));

        var list = await ControlClient.SendAsync(dir.File("run/control"), new ControlSocketRequest { Command = "list" }, CancellationToken.None);
        Assert.True(list.Ok, list.Error?.Message);
        var session = Assert.Single(list.Sessions!);
        Assert.Equal("logged-in", session.State);
        var lun = Assert.Single(session.Luns);
        Assert.Equal(0, lun.Counters.Errors);
        Assert.True(lun.Counters.BytesWritten >= Size);

        daemon.Signal(15);
        Assert.Equal(0, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        await Tools.RunAsync("cmp", source, istgt.BackingFile);
        Assert.False(File.Exists(socket));
        Assert.DoesNotContain("timed out", daemon.StandardError);
    }
}
