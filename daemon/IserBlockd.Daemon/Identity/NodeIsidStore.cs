using System.Security.Cryptography;
using System.Text;
using IserBlockd.Iscsi;
using Microsoft.Extensions.Logging;

namespace IserBlockd.Daemon.Identity;

/// <summary>
/// One ISID per node, kept in the state directory (/var/lib/iserblockd/isid/NODE, or under $XDG_STATE_HOME for a
/// non-root user) so that a restarted daemon logs in with the ISID of the one before: the target then reinstates
/// that session, ending every command the crashed predecessor left there (RFC 7143 §6.3.5) before any new one runs.
/// </summary>
public sealed class NodeIsidStore(IReadOnlyList<string> directories)
{
    public static NodeIsidStore Default { get; } = new(DefaultDirectories());

    private static List<string> DefaultDirectories()
    {
        var list = new List<string> { "/var/lib/iserblockd/isid" };
        var state = Environment.GetEnvironmentVariable("XDG_STATE_HOME");
        if (string.IsNullOrEmpty(state)) state = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "state");
        list.Add(Path.Combine(state, "iserblockd", "isid"));
        return list;
    }

    /// <summary>The node's kept ISID, or a new random one that is kept from now on (random and unkept when no directory is writable).</summary>
    public Isid GetOrCreate(string nodeName, string target, ILogger logger)
    {
        var file = FileName(nodeName, target);
        foreach (var directory in directories)
        {
            var path = Path.Combine(directory, file);
            try
            {
                if (File.Exists(path)) return Isid.Parse(File.ReadAllText(path).Trim());
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or ArgumentException)
            {
                logger.LogWarning("cannot read the kept ISID {Path}: {Reason}", path, e.Message);
            }
        }
        var isid = Isid.CreateRandom();
        foreach (var directory in directories)
        {
            try
            {
                Directory.CreateDirectory(directory);
                var path = Path.Combine(directory, file);
                var temporary = path + $".{Environment.ProcessId}.tmp";
                File.WriteAllText(temporary, isid + "\n");
                File.Move(temporary, path, overwrite: false);
                return isid;
            }
            catch (IOException) when (File.Exists(Path.Combine(directory, file)))
            {
                // Another process kept one first: use that one, so that the node has one ISID.
                try { return Isid.Parse(File.ReadAllText(Path.Combine(directory, file)).Trim()); }
                catch (Exception e) when (e is IOException or FormatException or ArgumentException) { logger.LogWarning("cannot read the kept ISID: {Reason}", e.Message); }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                logger.LogDebug("cannot keep the ISID in {Directory}: {Reason}", directory, e.Message);
            }
        }
        logger.LogWarning("node {Node}: no writable state directory; its ISID {Isid} is not kept across restarts", nodeName, isid);
        return isid;
    }

    /// <summary>A file name from the node name and target (readable, and unique per target).</summary>
    internal static string FileName(string nodeName, string target)
    {
        var safe = new StringBuilder();
        foreach (var c in nodeName) safe.Append(char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_' ? c : '_');
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(target)))[..12];
        return $"{safe}-{hash}";
    }
}
