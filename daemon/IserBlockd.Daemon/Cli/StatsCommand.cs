using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using IserBlockd.Daemon.Control;

namespace IserBlockd.Daemon.Cli;

/// <summary>
/// <c>iserblockctl stats [NODE] [-w SECONDS] [-c COUNT]</c>, iostat -x for the daemon's LUNs: per LUN IOPS, MB/s, p50/p99
/// latency, requests in flight and errors over each interval. Without <c>-w</c>, one report over one second; with it, a
/// report every SECONDS until interrupted (or COUNT reports). <c>-o json</c> prints one JSON array per report, one per line.
/// </summary>
public static class StatsCommand
{
    public static Command Create(CtlContext context)
    {
        var node = new Argument<string?>("NODE") { Description = "Only this node (default: every node)", Arity = ArgumentArity.ZeroOrOne };
        var watch = new Option<double?>("--watch", "-w") { Description = "Report every SECONDS until interrupted", HelpName = "SECONDS" };
        var count = new Option<int?>("--count", "-c") { Description = "Stop after COUNT reports", HelpName = "COUNT" };
        var control = new ControlCommandSupport();
        var command = new Command("stats", "Live per-LUN IOPS, MB/s, p50/p99 latency, in flight and errors (like iostat -x)") { node, watch, count };
        control.AddTo(command);
        command.SetAction((result, cancellationToken) => context.RunAsync(result, control.Output, async (_, stdout) =>
        {
            var interval = result.GetValue(watch) ?? 1;
            if (interval is < 0.1 or > 86400) throw new CliFailure(ExitCodes.Invalid, "--watch: expected 0.1 to 86400 seconds");
            var reports = result.GetValue(count) ?? (result.GetValue(watch) == null ? 1 : int.MaxValue);
            if (reports < 1) throw new CliFailure(ExitCodes.Invalid, "--count: expected 1 or more");
            var json = control.Output.IsJson(result);
            var request = new ControlSocketRequest { Command = "show", Node = result.GetValue(node) };
            var socket = result.GetValue(control.Socket)!;

            var before = await SnapshotAsync(socket, request, cancellationToken).ConfigureAwait(false);
            var clock = Stopwatch.StartNew();
            for (var i = 0; i < reports; i++)
            {
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(interval), cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break; // Ctrl-C ends a watch normally
                }
                var after = await SnapshotAsync(socket, request, cancellationToken).ConfigureAwait(false);
                var seconds = clock.Elapsed.TotalSeconds;
                clock.Restart();
                var rates = Rates(before, after, seconds);
                if (json) await stdout.WriteLineAsync(JsonSerializer.Serialize(rates, ControlJsonContext.Readable.ListLunRates)).ConfigureAwait(false);
                else await WriteTableAsync(stdout, rates, i > 0).ConfigureAwait(false);
                await stdout.FlushAsync(CancellationToken.None).ConfigureAwait(false);
                before = after;
            }
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static async Task<List<SessionInfo>> SnapshotAsync(string socket, ControlSocketRequest request, CancellationToken cancellationToken)
    {
        var response = await ControlClient.SendAsync(socket, request, cancellationToken).ConfigureAwait(false);
        if (!response.Ok)
        {
            var error = response.Error ?? new ControlError();
            throw new CliFailure(ControlErrorCodes.ExitCode(error.Code), error.Message);
        }
        return response.Sessions ?? [];
    }

    private static List<LunRates> Rates(List<SessionInfo> before, List<SessionInfo> after, double seconds)
    {
        var rates = new List<LunRates>();
        foreach (var session in after)
        {
            foreach (var lun in session.Luns.Where(l => l.Kinds != null))
            {
                var earlier = before.FirstOrDefault(s => s.Node == session.Node)?.Luns.FirstOrDefault(l => l.Lun == lun.Lun && l.Kinds != null) ?? Empty(lun.Lun);
                rates.Add(LunRates.Between(session.Node, earlier, lun, seconds));
            }
        }
        return rates;
    }

    private static LunInfo Empty(int lun) => new() { Lun = lun, Kinds = [] };

    private static async Task WriteTableAsync(TextWriter stdout, List<LunRates> rates, bool blankLine)
    {
        if (blankLine) await stdout.WriteLineAsync().ConfigureAwait(false);
        if (rates.Count == 0)
        {
            await stdout.WriteLineAsync("no LUNs mapped").ConfigureAwait(false);
            return;
        }
        static string F(double value) => value.ToString("0.0", CultureInfo.InvariantCulture);
        static string Ms(double? value) => value is { } v ? v.ToString(v < 1 ? "0.000" : "0.0", CultureInfo.InvariantCulture) : "-";
        var table = new TextTable("NODE", "LUN", "R/S", "W/S", "RMB/S", "WMB/S", "F/S", "R_P50MS", "R_P99MS", "W_P50MS", "W_P99MS", "INFLIGHT", "ERRORS");
        foreach (var r in rates)
        {
            table.Add(r.Node, r.Lun.ToString(CultureInfo.InvariantCulture), F(r.ReadIops), F(r.WriteIops),
                r.ReadMBps.ToString("0.00", CultureInfo.InvariantCulture), r.WriteMBps.ToString("0.00", CultureInfo.InvariantCulture), F(r.FlushesPerSecond),
                Ms(r.ReadP50Ms), Ms(r.ReadP99Ms), Ms(r.WriteP50Ms), Ms(r.WriteP99Ms),
                r.InFlight.ToString(CultureInfo.InvariantCulture), r.Errors.ToString(CultureInfo.InvariantCulture));
        }
        await table.WriteAsync(stdout).ConfigureAwait(false);
    }
}
