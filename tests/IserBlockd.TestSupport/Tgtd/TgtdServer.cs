using System.Globalization;
using System.Net.Sockets;

namespace IserBlockd.TestSupport.Tgtd;

/// <summary>Where and how a test's tgtd listens.</summary>
public sealed record TgtdOptions
{
    /// <summary>Listen address of the first portal (a loopback literal; IPv6 without brackets).</summary>
    public string Address { get; init; } = "127.0.0.1";

    /// <summary>TCP port; 0 picks a free one.</summary>
    public int Port { get; init; }

    /// <summary>Extra <c>--iscsi</c> options, e.g. <c>nop_interval=1</c>.</summary>
    public IReadOnlyList<string> IscsiOptions { get; init; } = [];

    /// <summary>tgtd debug level (<c>-d</c>), 0 for quiet.</summary>
    public int Debug { get; init; }
}

/// <summary>
/// A private tgtd for one test: its own TGT_IPC_SOCKET and temp directory, listening on a free loopback port.
/// Targets, LUNs (sparse backing files), CHAP accounts, ACLs and per-target iSCSI parameters are configured
/// through tgtadm. Every configuration command is recorded so that <see cref="RestartAsync"/> can kill tgtd
/// (SIGKILL, as a crash) and bring the same configuration back on the same port and backing files.
/// Disposal deletes the targets, kills tgtd and removes the directory.
/// </summary>
public sealed class TgtdServer : IAsyncDisposable
{
    private readonly List<string[]> _replay = [];
    private readonly List<TgtdTarget> _targets = [];
    private readonly TgtdOptions _options;
    private ExternalProcess? _process;
    private int _nextTid = 1;

    private TgtdServer(TgtdOptions options, TempDirectory directory, int port)
    {
        _options = options;
        Directory = directory;
        Port = port;
        IpcSocket = directory.File("tgtd-ipc");
    }

    public TempDirectory Directory { get; }

    /// <summary>The first portal's address as given (IPv6 without brackets).</summary>
    public string Address => _options.Address;

    public int Port { get; }

    /// <summary><c>host:port</c> with IPv6 bracketed, as iscsiadm and our CLI take it.</summary>
    public string Portal => Address.Contains(':') ? $"[{Address}]:{Port}" : $"{Address}:{Port}";

    /// <summary>The prefix tgtd and tgtadm use for their control socket (TGT_IPC_SOCKET).</summary>
    public string IpcSocket { get; }

    public IReadOnlyDictionary<string, string> Environment => new Dictionary<string, string> { ["TGT_IPC_SOCKET"] = IpcSocket };

    /// <summary>Everything tgtd printed so far (for failure messages).</summary>
    /// <summary>Bytes tgtd has read so far through read system calls (rchar of /proc/PID/io, every thread):
    /// its backing files and its sockets. What a client's copy costs the target shows in the difference.</summary>
    public long BytesReadByTarget()
    {
        var shell = _process?.Id ?? throw new InvalidOperationException("tgtd is not running");
        var children = File.ReadAllText($"/proc/{shell}/task/{shell}/children").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var tgtd = children.Single(pid => File.ReadAllText($"/proc/{pid}/comm").Trim() == "tgtd");
        var line = File.ReadAllLines($"/proc/{tgtd}/io").Single(l => l.StartsWith("rchar:", StringComparison.Ordinal));
        return long.Parse(line["rchar:".Length..].Trim(), CultureInfo.InvariantCulture);
    }

    public string Log => _process == null ? "" : _process.StandardOutput + _process.StandardError;

    public static async Task<TgtdServer> StartAsync(TgtdOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new TgtdOptions();
        var directory = new TempDirectory("tgtd");
        var server = new TgtdServer(options, directory, options.Port != 0 ? options.Port : FreePort.Next());
        try
        {
            await server.LaunchAsync(cancellationToken);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    private async Task LaunchAsync(CancellationToken cancellationToken)
    {
        var iscsi = string.Join(',', new[] { $"portal={Portal}" }.Concat(_options.IscsiOptions));
        var tgtd = ExternalProcess.ResolveTool("tgtd");
        var debug = _options.Debug > 0 ? $" -d {_options.Debug.ToString(CultureInfo.InvariantCulture)}" : "";
        // A watcher shell kills tgtd when the test process disappears (crash, timeout kill), so that no tgtd outlives it.
        var script = $"\"{tgtd}\" -f --iscsi '{iscsi}'{debug} & t=$!; " +
                     $"while kill -0 {System.Environment.ProcessId} 2>/dev/null && kill -0 $t 2>/dev/null; do sleep 0.5; done; kill -9 $t 2>/dev/null; wait $t";
        _process = ExternalProcess.Start("/bin/sh", ["-c", script], new Dictionary<string, string>(Environment));

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (_process.HasExited) throw new InvalidOperationException($"tgtd exited at start.\n{Log}");
            var probe = await ExternalProcess.RunAsync("tgtadm", ["--lld", "iscsi", "--mode", "target", "--op", "show"], TimeSpan.FromSeconds(10), new Dictionary<string, string>(Environment));
            if (probe.ExitCode == 0 && await IsListeningAsync()) return;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"tgtd did not come up on {Portal}: {probe.StandardError}\n{Log}");
            await Task.Delay(50, cancellationToken);
        }
    }

    private async Task<bool> IsListeningAsync()
    {
        try
        {
            using var client = new Socket(Address.Contains(':') ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await client.ConnectAsync(System.Net.IPAddress.Parse(Address), Port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>Runs <c>tgtadm --lld iscsi ARGS</c> against this tgtd; throws with tgtadm's message on failure.</summary>
    public async Task<string> AdminAsync(params string[] args)
    {
        var result = await ExternalProcess.RunAsync("tgtadm", ["--lld", "iscsi", .. args], TimeSpan.FromSeconds(30), new Dictionary<string, string>(Environment));
        if (result.ExitCode != 0)
            throw new InvalidOperationException($"tgtadm {string.Join(' ', args)} failed ({result.ExitCode}): {result.StandardError.Trim()} {result.StandardOutput.Trim()}");
        return result.StandardOutput;
    }

    /// <summary>Runs a configuration command and records it for <see cref="RestartAsync"/>.</summary>
    internal async Task<string> ConfigureAsync(params string[] args)
    {
        var output = await AdminAsync(args);
        lock (_replay) _replay.Add(args);
        return output;
    }

    /// <summary>Creates a target; <see cref="TgtdTarget.BindAsync"/> must still admit initiators.</summary>
    public async Task<TgtdTarget> CreateTargetAsync(string name)
    {
        var tid = _nextTid++;
        await ConfigureAsync("--mode", "target", "--op", "new", "--tid", tid.ToString(CultureInfo.InvariantCulture), "--targetname", name);
        var target = new TgtdTarget(this, tid, name);
        _targets.Add(target);
        return target;
    }

    /// <summary>Adds a listening portal (e.g. <c>::1</c> for IPv6 discovery tests).</summary>
    public Task AddPortalAsync(string address, int port)
        => ConfigureAsync("--mode", "portal", "--op", "new", "--param", $"portal={(address.Contains(':') ? $"[{address}]" : address)}:{port}");

    /// <summary>Creates a CHAP account (accounts are global in tgtd; bind them to targets).</summary>
    public Task CreateAccountAsync(string user, string password)
        => ConfigureAsync("--mode", "account", "--op", "new", "--user", user, "--password", password);

    /// <summary>The I_T nexuses (sessions) tgtd has on a target.</summary>
    public async Task<IReadOnlyList<TgtdSession>> ListSessionsAsync(int tid)
    {
        var output = await AdminAsync("--mode", "target", "--op", "show");
        return TgtdSession.Parse(output, tid);
    }

    /// <summary>Kills tgtd with SIGKILL, as a crash; connections drop without logout.</summary>
    public async Task KillAsync()
    {
        if (_process == null) return;
        _process.Kill();
        await _process.WaitForExitAsync(TimeSpan.FromSeconds(10));
        await _process.DisposeAsync();
        _process = null;
        // tgtd leaves its control socket behind; remove it so that the next tgtd can bind.
        foreach (var f in System.IO.Directory.GetFiles(Directory.Path, "tgtd-ipc*")) File.Delete(f);
    }

    /// <summary>Starts tgtd again on the same port and replays the recorded configuration (same backing files).</summary>
    public async Task RestartAsync(CancellationToken cancellationToken = default)
    {
        await KillAsync();
        await LaunchAsync(cancellationToken);
        string[][] replay;
        lock (_replay) replay = [.. _replay];
        foreach (var args in replay) await AdminAsync(args);
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            foreach (var t in _targets)
            {
                try { await AdminAsync("--mode", "target", "--op", "delete", "--force", "--tid", t.Tid.ToString(CultureInfo.InvariantCulture)); }
                catch (InvalidOperationException) { }
            }
        }
        if (_process != null)
        {
            await _process.DisposeAsync();
            _process = null;
        }
        Directory.Dispose();
    }
}
