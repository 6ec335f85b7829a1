using IserBlockd.TestSupport;

namespace IserBlockd.Integration.Tests;

/// <summary>A running <c>iserblockd export</c> and the URI (or device) of its ready line.</summary>
internal sealed class ExportProcess : IAsyncDisposable
{
    private ExportProcess(ExternalProcess process, string ready)
    {
        Process = process;
        Ready = ready;
    }

    public ExternalProcess Process { get; }

    /// <summary>What follows "ready: " — an NBD URI or /dev/nbdN.</summary>
    public string Ready { get; }

    public static Task<ExportProcess> StartAsync(TestTarget target, int lun, params string[] way) => StartAsync(target.Portal, target.Iqn, lun, way);

    /// <summary>An export of any target (istgt, ...) at <paramref name="portal"/>.</summary>
    public static async Task<ExportProcess> StartAsync(string portal, string iqn, int lun, params string[] way)
    {
        var process = ExternalProcess.Start(Executables.Iserblockd,
            ["export", "--portal", portal, "--target", iqn, "--lun", lun.ToString(System.Globalization.CultureInfo.InvariantCulture),
             "--initiator-name", TestTarget.InitiatorName, "--log-level", "info", .. way]);
        try
        {
            var line = await process.WaitForLineAsync(l => l.StartsWith("ready: ", StringComparison.Ordinal), TimeSpan.FromSeconds(60));
            var readyLines = process.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal([line], readyLines); // exactly one line on stdout
            return new ExportProcess(process, line["ready: ".Length..]);
        }
        catch
        {
            await process.DisposeAsync();
            throw;
        }
    }

    /// <summary>SIGTERM, then the exit code.</summary>
    public async Task<int> StopAsync()
    {
        Process.Signal(15);
        return await Process.WaitForExitAsync(TimeSpan.FromSeconds(60));
    }

    public ValueTask DisposeAsync() => Process.DisposeAsync();
}
