using System.Security.Cryptography;
using System.Text;
using IserBlockd.Daemon.Configuration;
using IserBlockd.Primitives.Native;

namespace IserBlockd.Daemon.Identity;

/// <summary>Where an initiator name came from.</summary>
public enum InitiatorNameSource
{
    /// <summary>open-iscsi's /etc/iscsi/initiatorname.iscsi: the host keeps one identity for both initiators.</summary>
    OpenIscsi,
    /// <summary>The name generated earlier and kept in our state file.</summary>
    Stored,
    /// <summary>Generated now and written to the state file.</summary>
    Generated,
}

/// <param name="Why">For the log: where the name came from, and why not from open-iscsi's file when it could not be read.</param>
public sealed record InitiatorName(string Name, InitiatorNameSource Source, string File, string Why = "")
{
    /// <summary>True when a system-wide name exists but this user could not read it (a non-root user on Debian, where
    /// /etc/iscsi/initiatorname.iscsi is mode 0600): target ACLs written for the host do not admit this name.</summary>
    public bool IsPerUserFallback { get; init; }
}

/// <summary>
/// The initiator name this host uses, as open-iscsi users expect: <c>InitiatorName=</c> from
/// /etc/iscsi/initiatorname.iscsi when present; otherwise a name generated once
/// (<c>iqn.2026-11.io.iserblockd:HOSTNAME-RANDOM</c>) and kept in /var/lib/iserblockd/initiatorname, so that
/// target ACLs keep matching across restarts. A non-root user who cannot write there keeps it under
/// $XDG_STATE_HOME (default ~/.local/state)/iserblockd instead.
/// </summary>
public sealed class InitiatorIdentity
{
    public const string OpenIscsiFile = "/etc/iscsi/initiatorname.iscsi";
    public const string StateFile = "/var/lib/iserblockd/initiatorname";
    public const string NamePrefix = "iqn.2026-11.io.iserblockd:";

    private readonly string _openIscsiFile;
    private readonly string _stateFile;
    private readonly string? _userStateFile;
    private readonly Func<string> _hostName;

    public InitiatorIdentity(string openIscsiFile = OpenIscsiFile, string stateFile = StateFile, string? userStateFile = null, Func<string>? hostName = null)
    {
        _openIscsiFile = openIscsiFile;
        _stateFile = stateFile;
        _userStateFile = userStateFile ?? DefaultUserStateFile();
        _hostName = hostName ?? (() => Environment.MachineName);
    }

    /// <summary>Finds or creates the name; throws <see cref="InvalidOperationException"/> with a one-line reason when neither works.</summary>
    public InitiatorName Resolve()
    {
        if (TryReadNameFile(_openIscsiFile, out var fromOpenIscsi, out var error, out var unreadable))
            return new InitiatorName(fromOpenIscsi, InitiatorNameSource.OpenIscsi, _openIscsiFile, $"from {_openIscsiFile}");
        // A file this user may not read (Debian's is mode 0600) is not a mistake to stop at: fall back to our own name.
        if (error != null && !unreadable) throw new InvalidOperationException(error);
        var skipped = new List<string>();
        if (error != null) skipped.Add(error);

        foreach (var file in StateFiles())
        {
            if (TryReadNameFile(file, out var stored, out error, out unreadable))
                return Named(stored, InitiatorNameSource.Stored, file, $"kept in {file} since its first use", skipped);
            if (error != null && !unreadable) throw new InvalidOperationException(error);
            if (error != null) skipped.Add(error);
        }

        var name = Generate(_hostName());
        var failures = new List<string>();
        foreach (var file in StateFiles())
        {
            try
            {
                Write(file, name);
                // Read back: a concurrent first run may have won, and the host must have one name.
                if (TryReadNameFile(file, out var kept, out _, out _) && kept != name)
                    return Named(kept, InitiatorNameSource.Stored, file, $"kept in {file} since its first use", skipped);
                return Named(name, InitiatorNameSource.Generated, file, $"generated now and kept in {file}", skipped);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                failures.Add($"{file}: {e.Message}");
            }
        }
        throw new InvalidOperationException($"cannot keep a generated initiator name ({string.Join("; ", failures)}); give --initiator-name IQN");
    }

    private static InitiatorName Named(string name, InitiatorNameSource source, string file, string why, List<string> skipped) =>
        new(name, source, file, skipped.Count == 0 ? why : $"{why}, because {string.Join("; ", skipped)}") { IsPerUserFallback = skipped.Count > 0 };

    /// <summary>iqn.2026-11.io.iserblockd:HOST-RANDOM with the host name reduced to what an iSCSI name allows.</summary>
    public static string Generate(string hostName)
    {
        var host = new StringBuilder();
        foreach (var c in hostName.ToLowerInvariant())
            host.Append(char.IsAsciiLetterOrDigit(c) || c is '-' or '.' ? c : '-');
        var cleaned = host.ToString().Trim('-', '.');
        if (cleaned.Length == 0) cleaned = "host";
        if (cleaned.Length > 64) cleaned = cleaned[..64];
        return $"{NamePrefix}{cleaned}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}";
    }

    private IEnumerable<string> StateFiles()
    {
        yield return _stateFile;
        if (_userStateFile != null && _userStateFile != _stateFile) yield return _userStateFile;
    }

    /// <summary>Reads <c>InitiatorName=</c> (comments and blank lines allowed). False with no error when the file is absent.</summary>
    internal static bool TryReadNameFile(string path, out string name, out string? error) => TryReadNameFile(path, out name, out error, out _);

    /// <param name="unreadable">The error is that this user may not read the file (as opposed to a malformed one).</param>
    internal static bool TryReadNameFile(string path, out string name, out string? error, out bool unreadable)
    {
        name = "";
        error = null;
        unreadable = false;
        string[] lines;
        try
        {
            if (!File.Exists(path)) return false;
            lines = File.ReadAllLines(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            unreadable = e is UnauthorizedAccessException;
            error = unreadable ? $"{path} is not readable by this user (uid {LibC.geteuid()})" : $"cannot read {path}: {e.Message}";
            return false;
        }
        foreach (var raw in lines)
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#') continue;
            if (!line.StartsWith("InitiatorName=", StringComparison.Ordinal)) continue;
            var value = line["InitiatorName=".Length..].Trim();
            if (!IscsiNameSyntax.IsValid(value))
            {
                error = $"{path}: '{value}' is not {IscsiNameSyntax.Expected}";
                return false;
            }
            name = value;
            return true;
        }
        error = $"{path} has no InitiatorName= line";
        return false;
    }

    private static void Write(string path, string name)
    {
        var directory = Path.GetDirectoryName(path)!;
        Directory.CreateDirectory(directory);
        var temporary = Path.Combine(directory, $".{Path.GetFileName(path)}.{Environment.ProcessId}.tmp");
        File.WriteAllText(temporary, $"# generated by iserblockd; the iSCSI name of this host (targets' ACLs refer to it)\nInitiatorName={name}\n");
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(temporary, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        // Another process may have generated one meanwhile: keep the first, so that the host has one name.
        try
        {
            File.Move(temporary, path, overwrite: false);
        }
        catch (IOException) when (File.Exists(path))
        {
            File.Delete(temporary);
        }
    }

    private static string? DefaultUserStateFile()
    {
        var state = Environment.GetEnvironmentVariable("XDG_STATE_HOME");
        if (string.IsNullOrEmpty(state))
        {
            var home = Environment.GetEnvironmentVariable("HOME");
            if (string.IsNullOrEmpty(home)) return null;
            state = Path.Combine(home, ".local", "state");
        }
        return Path.Combine(state, "iserblockd", "initiatorname");
    }
}
