using System.Text;
using IserBlockd.Daemon.Configuration;
using IserBlockd.Iscsi.Security;

namespace IserBlockd.Daemon.Tests.Configuration;

public sealed class SecretFileTests : IDisposable
{
    private readonly TestSupport.TempDirectory _dir = new("iserblockd-secret");

    public void Dispose() => _dir.Dispose();

    private string Write(string name, string content, UnixFileMode mode)
    {
        var path = _dir.File(name);
        File.WriteAllText(path, content);
        File.SetUnixFileMode(path, mode);
        return path;
    }

    private string ConfigWithSecret(string secretPath) => $$"""
        { "nodes": [ { "name": "a", "portals": ["h"], "target": "iqn.2003-01.org.example:a",
                       "chap": { "user": "u", "secretFile": "{{secretPath}}" },
                       "luns": [ { "lun": 0, "device": "auto" } ] } ] }
        """;

    [Theory]
    [InlineData(UnixFileMode.UserRead | UnixFileMode.UserWrite)]
    [InlineData(UnixFileMode.UserRead)]
    public void Owner_only_modes_are_accepted(UnixFileMode mode)
    {
        var path = Write("ok.secret", "abcdefghijkl\r\n", mode);
        var secret = SecretFile.TryRead(path, out var error);
        Assert.Equal("", error);
        Assert.Equal(ChapSecret.FromString("abcdefghijkl"), secret);
    }

    [Theory]
    [InlineData(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead, "0644")]
    [InlineData(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead, "0640")]
    [InlineData(UnixFileMode.UserRead | UnixFileMode.OtherExecute, "0401")]
    public void Group_or_other_access_is_refused_naming_the_file_and_mode(UnixFileMode mode, string octal)
    {
        var path = Write("open.secret", "abcdefghijkl", mode);
        var error = Assert.Single(Assert.Throws<ConfigException>(() =>
            ConfigLoader.Parse(Encoding.UTF8.GetBytes(ConfigWithSecret(path)), "t.json")).Errors);
        Assert.Equal("nodes[0].chap.secretFile", error.Path);
        Assert.Equal($"{path} has mode {octal}; a secret file must be mode 0600 or stricter (chmod 600 {path})", error.Message);
    }

    [Fact]
    public void A_file_not_owned_by_root_is_refused_when_running_as_root()
    {
        var path = Write("foreign.secret", "abcdefghijkl", UnixFileMode.UserRead | UnixFileMode.UserWrite);
        if (Environment.UserName != "root")
        {
            // Without root the rule does not apply (and we cannot chown): our own file is fine.
            Assert.NotNull(SecretFile.TryRead(path, out _));
            return;
        }
        Assert.Equal(0, Chown(path, 1000, 1000));
        var secret = SecretFile.TryRead(path, out var error);
        Assert.Null(secret);
        Assert.Equal($"{path} is owned by uid 1000; running as root, a secret file must be owned by root (chown root {path})", error);
    }

    [Fact]
    public void Missing_empty_and_non_regular_files_are_refused()
    {
        Assert.Null(SecretFile.TryRead(_dir.File("none"), out var missing));
        Assert.StartsWith($"cannot read {_dir.File("none")}", missing);

        var empty = Write("empty.secret", "\n", UnixFileMode.UserRead);
        Assert.Null(SecretFile.TryRead(empty, out var emptyError));
        Assert.Equal($"{empty} is empty", emptyError);

        Assert.Null(SecretFile.TryRead("/dev/null", out var device));
        Assert.Equal("/dev/null is not a regular file", device);
    }

    [Fact]
    public void Mutual_chap_needs_two_different_secrets()
    {
        var a = Write("a.secret", "same-secret-123", UnixFileMode.UserRead);
        var b = Write("b.secret", "same-secret-123", UnixFileMode.UserRead);
        var error = Assert.Single(Assert.Throws<ConfigException>(() => ConfigLoader.Parse(Encoding.UTF8.GetBytes($$"""
            { "nodes": [ { "name": "a", "portals": ["h"], "target": "iqn.2003-01.org.example:a",
                           "chap": { "user": "u", "secretFile": "{{a}}", "targetUser": "t", "targetSecretFile": "{{b}}" },
                           "luns": [ { "lun": 0, "device": "auto" } ] } ] }
            """), "t.json")).Errors);
        Assert.Equal("nodes[0].chap.targetSecretFile", error.Path);
    }

    [Fact]
    public void Half_of_mutual_chap_is_an_error()
    {
        var a = Write("a.secret", "initiator-secret", UnixFileMode.UserRead);
        var errors = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(Encoding.UTF8.GetBytes($$"""
            { "nodes": [ { "name": "a", "portals": ["h"], "target": "iqn.2003-01.org.example:a",
                           "chap": { "secretFile": "{{a}}", "targetUser": "t" },
                           "luns": [ { "lun": 0, "device": "auto" } ] } ] }
            """), "t.json")).Errors.Select(e => e.Path);
        Assert.Equal(["nodes[0].chap.user", "nodes[0].chap.targetSecretFile"], errors);
    }

    private static int Chown(string path, int owner, int group) => IserBlockd.Primitives.Native.LibC.chown(path, (uint)owner, (uint)group);
}
