using System.Runtime.InteropServices;
using IserBlockd.Daemon.Identity;
using IserBlockd.TestSupport;
using static IserBlockd.Primitives.Native.LibC;

namespace IserBlockd.Daemon.Tests.Identity;

/// <summary>
/// A non-root user on Debian, where /etc/iscsi/initiatorname.iscsi is root's and mode 0600: the name is generated
/// once per user and kept under $XDG_STATE_HOME (~/.local/state). The suite runs as root, so the resolution runs on
/// a thread whose filesystem uid is nobody's (setfsuid drops root's file-access override for that thread only).
/// </summary>
public sealed class PerUserInitiatorNameTests : IDisposable
{
    private const uint Nobody = 65534;
    private readonly TempDirectory _dir = new("identity-user");

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Unreadable_system_name_falls_back_to_a_per_user_name_generated_once()
    {
        File.SetUnixFileMode(_dir.Path, (UnixFileMode)Convert.ToInt32("755", 8));
        var openIscsi = _dir.File("initiatorname.iscsi");
        File.WriteAllText(openIscsi, "InitiatorName=iqn.1993-08.org.debian:01:host-wide\n");
        File.SetUnixFileMode(openIscsi, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var systemDirectory = _dir.File("var-lib-iserblockd");
        Directory.CreateDirectory(systemDirectory);
        File.SetUnixFileMode(systemDirectory, (UnixFileMode)Convert.ToInt32("755", 8)); // not writable by the user
        var home = _dir.File("home");
        Directory.CreateDirectory(home);
        Assert.Equal(0, chown(home, Nobody, Nobody));
        var userFile = Path.Combine(home, ".local", "state", "iserblockd", "initiatorname");
        InitiatorIdentity Identity() => new(openIscsi, Path.Combine(systemDirectory, "initiatorname"), userFile, () => "Build-Host");

        var first = AsNobody(() => Identity().Resolve());
        Assert.Equal(InitiatorNameSource.Generated, first.Source);
        Assert.StartsWith(InitiatorIdentity.NamePrefix + "build-host-", first.Name);
        Assert.Equal(userFile, first.File);
        Assert.True(first.IsPerUserFallback);
        Assert.Contains($"generated now and kept in {userFile}", first.Why);
        Assert.Contains($"{openIscsi} is not readable by this user", first.Why);
        Assert.Contains($"InitiatorName={first.Name}", File.ReadAllText(userFile));

        var again = AsNobody(() => Identity().Resolve());
        Assert.Equal(first.Name, again.Name);
        Assert.Equal(InitiatorNameSource.Stored, again.Source);
        Assert.Contains("kept in", again.Why);

        // root (who can read it) still gets the host's name
        Assert.Equal("iqn.1993-08.org.debian:01:host-wide", Identity().Resolve().Name);
    }

    /// <summary>Runs <paramref name="action"/> on a new thread with nobody's filesystem uid and gid (root: a real
    /// permission check; any other user: already one).</summary>
    private static T AsNobody<T>(Func<T> action)
    {
        T? result = default;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            var root = geteuid() == 0;
            if (root) { setfsgid(Nobody); setfsuid(Nobody); }
            try { result = action(); }
            catch (Exception e) { failure = e; }
            finally
            {
                if (root) { setfsuid(0); setfsgid(0); }
            }
        });
        thread.Start();
        thread.Join();
        if (failure != null) throw new InvalidOperationException("resolution as nobody failed", failure);
        return result!;
    }
}
