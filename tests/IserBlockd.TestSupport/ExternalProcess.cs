using System.Diagnostics;
using System.Text;

namespace IserBlockd.TestSupport;

/// <summary>
/// A real peer program (tgtd, nbdinfo, fio, qemu-io, ...) started by a test. Output is captured so a
/// failing assertion can show it; disposal kills the whole process tree so nothing outlives the test.
/// </summary>
public sealed class ExternalProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly TaskCompletionSource _stdoutClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stderrClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ExternalProcess(Process process) => _process = process;

    public int Id => _process.Id;
    public bool HasExited => _process.HasExited;
    public string CommandLine { get; private init; } = "";

    public string StandardOutput { get { lock (_stdout) return _stdout.ToString(); } }
    public string StandardError { get { lock (_stderr) return _stderr.ToString(); } }

    /// <summary>Raised for every line the program writes to stdout or stderr.</summary>
    public event Action<string>? Line;

    public static ExternalProcess Start(string fileName, IEnumerable<string> arguments,
        IDictionary<string, string>? environment = null, string? workingDirectory = null)
    {
        var info = new ProcessStartInfo(ResolveTool(fileName))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? "",
        };
        foreach (var a in arguments) info.ArgumentList.Add(a);
        if (environment != null)
            foreach (var (k, v) in environment) info.Environment[k] = v;

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var self = new ExternalProcess(process) { CommandLine = fileName + " " + string.Join(' ', info.ArgumentList) };
        process.OutputDataReceived += (_, e) => self.OnLine(e.Data, self._stdout, self._stdoutClosed);
        process.ErrorDataReceived += (_, e) => self.OnLine(e.Data, self._stderr, self._stderrClosed);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return self;
    }

    /// <summary>Runs a program to completion and returns its exit code and output.</summary>
    public static async Task<ProcessResult> RunAsync(string fileName, IEnumerable<string> arguments,
        TimeSpan? timeout = null, IDictionary<string, string>? environment = null, string? standardInput = null)
    {
        await using var p = Start(fileName, arguments, environment);
        if (standardInput != null) await p._process.StandardInput.WriteAsync(standardInput);
        p._process.StandardInput.Close();
        var code = await p.WaitForExitAsync(timeout ?? TimeSpan.FromMinutes(2));
        return new ProcessResult(p.CommandLine, code, p.StandardOutput, p.StandardError);
    }

    /// <summary>Waits for exit; kills the tree and throws <see cref="TimeoutException"/> on timeout.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            Kill();
            throw new TimeoutException($"'{CommandLine}' did not finish within {timeout}.\nstdout:\n{StandardOutput}\nstderr:\n{StandardError}");
        }
        await Task.WhenAll(_stdoutClosed.Task, _stderrClosed.Task).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        return _process.ExitCode;
    }

    /// <summary>Waits until a line of output satisfies <paramref name="predicate"/>.</summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> predicate, TimeSpan timeout)
    {
        var found = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        void Check(string line) { if (predicate(line)) found.TrySetResult(line); }
        Line += Check;
        try
        {
            foreach (var line in (StandardOutput + StandardError).Split('\n')) Check(line.TrimEnd('\r'));
            var exited = _process.WaitForExitAsync();
            var done = await Task.WhenAny(found.Task, exited, Task.Delay(timeout));
            if (done == found.Task) return await found.Task;
            var why = done == exited ? $"exited with {_process.ExitCode}" : $"timed out after {timeout}";
            throw new InvalidOperationException($"'{CommandLine}' {why} before the expected line.\nstdout:\n{StandardOutput}\nstderr:\n{StandardError}");
        }
        finally { Line -= Check; }
    }

    public void Signal(int signal) => _ = IserBlockd.Primitives.Native.LibC.kill(_process.Id, signal);

    public void Kill()
    {
        try { if (!_process.HasExited) _process.Kill(entireProcessTree: true); }
        catch (InvalidOperationException) { }
    }

    public async ValueTask DisposeAsync()
    {
        Kill();
        try { await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10)); }
        catch (TimeoutException) { }
        _process.Dispose();
    }

    private void OnLine(string? data, StringBuilder sink, TaskCompletionSource closed)
    {
        if (data == null) { closed.TrySetResult(); return; }
        lock (sink) sink.AppendLine(data);
        Line?.Invoke(data);
    }

    /// <summary>Finds a tool on PATH (and in /usr/sbin, which a non-login PATH may lack).</summary>
    public static string ResolveTool(string name)
    {
        if (name.Contains('/')) return name;
        var path = (Environment.GetEnvironmentVariable("PATH") ?? "") + ":/usr/local/sbin:/usr/sbin:/sbin";
        foreach (var dir in path.Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException($"'{name}' is not installed; run the README's setup command (./setup.sh --no-demo).");
    }
}

public sealed record ProcessResult(string CommandLine, int ExitCode, string StandardOutput, string StandardError)
{
    public ProcessResult EnsureSuccess()
    {
        if (ExitCode != 0)
            throw new InvalidOperationException($"'{CommandLine}' exited with {ExitCode}.\nstdout:\n{StandardOutput}\nstderr:\n{StandardError}");
        return this;
    }
}
