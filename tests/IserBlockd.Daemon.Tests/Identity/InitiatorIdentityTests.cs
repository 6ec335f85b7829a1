using IserBlockd.Daemon.Identity;
using IserBlockd.TestSupport;

namespace IserBlockd.Daemon.Tests.Identity;

public sealed class InitiatorIdentityTests : IDisposable
{
    private readonly TempDirectory _dir = new("identity");

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Uses_the_open_iscsi_name_when_present()
    {
        var openIscsi = _dir.File("initiatorname.iscsi");
        File.WriteAllText(openIscsi, "## DO NOT EDIT\n# InitiatorName=iqn.2000-01.com.example:commented\nInitiatorName=iqn.1993-08.org.debian:01:abcdef\n");
        var identity = new InitiatorIdentity(openIscsi, _dir.File("state/initiatorname"), _dir.File("user/initiatorname"));
        var name = identity.Resolve();
        Assert.Equal("iqn.1993-08.org.debian:01:abcdef", name.Name);
        Assert.Equal(InitiatorNameSource.OpenIscsi, name.Source);
        Assert.False(File.Exists(_dir.File("state/initiatorname")));
    }

    [Fact]
    public void Generates_once_and_keeps_the_name()
    {
        var state = _dir.File("var/lib/iserblockd/initiatorname");
        var identity = new InitiatorIdentity(_dir.File("absent.iscsi"), state, _dir.File("user/initiatorname"), () => "Db-Server_01.example");
        var first = identity.Resolve();
        Assert.Equal(InitiatorNameSource.Generated, first.Source);
        Assert.Matches(@"^iqn\.2026-11\.io\.iserblockd:db-server-01\.example-[0-9a-f]{12}$", first.Name);
        Assert.Contains($"InitiatorName={first.Name}", File.ReadAllText(state));
        var second = new InitiatorIdentity(_dir.File("absent.iscsi"), state, _dir.File("user/initiatorname"), () => "other").Resolve();
        Assert.Equal(first.Name, second.Name);
        Assert.Equal(InitiatorNameSource.Stored, second.Source);
    }

    [Fact]
    public void A_malformed_name_is_an_error_not_silently_replaced()
    {
        var openIscsi = _dir.File("initiatorname.iscsi");
        File.WriteAllText(openIscsi, "InitiatorName=not an iqn\n");
        var e = Assert.Throws<InvalidOperationException>(() => new InitiatorIdentity(openIscsi, _dir.File("s"), null).Resolve());
        Assert.Contains("not an iqn", e.Message);
    }

    [Fact]
    public void Falls_back_to_the_user_state_file_when_the_system_one_cannot_be_written()
    {
        // A path below a regular file cannot be created, as /var/lib is not writable for a normal user.
        var blocker = _dir.File("blocker");
        File.WriteAllText(blocker, "");
        var user = _dir.File("home/.local/state/iserblockd/initiatorname");
        var name = new InitiatorIdentity(_dir.File("absent"), Path.Combine(blocker, "initiatorname"), user, () => "h").Resolve();
        Assert.Equal(user, name.File);
        Assert.True(File.Exists(user));
    }
}
