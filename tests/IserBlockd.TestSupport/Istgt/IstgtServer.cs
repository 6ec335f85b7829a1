using System.Globalization;

namespace IserBlockd.TestSupport.Istgt;

/// <summary>
/// A private istgt (the Debian package) for one test: its own config directory (istgt.conf, an empty auth file,
/// one LogicalUnit backed by a sparse file), listening on a free loopback port, run in the foreground (-D) and
/// killed with the test process. Disposal stops it and removes the directory.
/// </summary>
public sealed class IstgtServer : IAsyncDisposable
{
    public const string NodeBase = "iqn.2026-11.io.iserblockd.istgt";

    private ExternalProcess? _process;

    private IstgtServer(TempDirectory directory, int port, string unitName, string backingFile)
    {
        Directory = directory;
        Port = port;
        TargetName = $"{NodeBase}:{unitName}";
        BackingFile = backingFile;
    }

    public TempDirectory Directory { get; }
    public int Port { get; }
    public string Address => "127.0.0.1";
    public string Portal => $"{Address}:{Port}";

    /// <summary>The target's IQN (istgt puts NodeBase before the unit's TargetName).</summary>
    public string TargetName { get; }

    /// <summary>The file behind LUN 0.</summary>
    public string BackingFile { get; }

    /// <summary>Everything istgt printed so far (for failure messages).</summary>
    public string Log => _process == null ? "" : _process.StandardOutput + _process.StandardError;

    /// <summary>Starts istgt with one target, <c>disk1</c>, whose LUN 0 is a sparse file of <paramref name="size"/> bytes.</summary>
    public static async Task<IstgtServer> StartAsync(long size = 64 << 20, string unitName = "disk1", CancellationToken cancellationToken = default)
    {
        var directory = new TempDirectory("istgt");
        var backing = directory.File("lun0.img");
        await using (var f = File.Create(backing)) f.SetLength(size);
        var server = new IstgtServer(directory, FreePort.Next(), unitName, backing);
        try
        {
            server.WriteConfiguration(unitName, size);
            await server.LaunchAsync(cancellationToken);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    private void WriteConfiguration(string unitName, long size)
    {
        var control = FreePort.Next();
        File.WriteAllText(Directory.File("auth.conf"), "[AuthGroup10000]\n  Auth \"ctluser\" \"testsecret12\"\n");
        var megabytes = (size / (1024 * 1024)).ToString(CultureInfo.InvariantCulture);
        File.WriteAllText(Directory.File("istgt.conf"), $"""
            [Global]
              NodeBase "{NodeBase}"
              PidFile {Directory.File("istgt.pid")}
              AuthFile {Directory.File("auth.conf")}
              MediaDirectory {Directory.Path}
              LogFacility "local7"
              Timeout 30
              NopInInterval 20
              DiscoveryAuthMethod None
              MaxSessions 16
              MaxConnections 4
              MaxR2T 32
              MaxOutstandingR2T 16
              DefaultTime2Wait 2
              DefaultTime2Retain 60
              FirstBurstLength 262144
              MaxBurstLength 1048576
              MaxRecvDataSegmentLength 262144
              InitialR2T Yes
              ImmediateData Yes
              DataPDUInOrder Yes
              DataSequenceInOrder Yes
              ErrorRecoveryLevel 0
            [UnitControl]
              AuthMethod CHAP Mutual
              AuthGroup AuthGroup10000
              Portal UC1 127.0.0.1:{control}
              Netmask 127.0.0.1
            [PortalGroup1]
              Portal DA1 {Address}:{Port}
            [InitiatorGroup1]
              InitiatorName "ALL"
              Netmask 127.0.0.0/8
            [LogicalUnit1]
              TargetName {unitName}
              Mapping PortalGroup1 InitiatorGroup1
              AuthMethod None
              UseDigest Auto
              UnitType Disk
              LUN0 Storage {BackingFile} {megabytes}MB

            """);
    }

    private async Task LaunchAsync(CancellationToken cancellationToken)
    {
        var istgt = ExternalProcess.ResolveTool("istgt");
        // A watcher shell kills istgt when the test process disappears, so that no istgt outlives it.
        var script = $"\"{istgt}\" -c '{Directory.File("istgt.conf")}' -p '{Directory.File("istgt.pid")}' -D & t=$!; " +
                     $"while kill -0 {System.Environment.ProcessId} 2>/dev/null && kill -0 $t 2>/dev/null; do sleep 0.5; done; kill -9 $t 2>/dev/null; wait $t";
        _process = ExternalProcess.Start("/bin/sh", ["-c", script], new Dictionary<string, string>());
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (_process.HasExited) throw new InvalidOperationException($"istgt exited at start.\n{Log}");
            try
            {
                await FreePort.WaitListeningAsync(Port, TimeSpan.FromMilliseconds(200));
                return;
            }
            catch (Exception) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(50, cancellationToken);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_process != null)
        {
            await _process.DisposeAsync();
            _process = null;
        }
        Directory.Dispose();
    }
}
