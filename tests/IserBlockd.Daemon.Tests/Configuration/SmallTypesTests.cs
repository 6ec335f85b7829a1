using IserBlockd.Daemon.Configuration;
using IserBlockd.Daemon.Mappings;

namespace IserBlockd.Daemon.Tests.Configuration;

public sealed class SmallTypesTests
{
    [Fact]
    public void Reconnect_delays_double_up_to_the_maximum()
    {
        var policy = new ReconnectPolicy(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30));
        Assert.Equal([1, 2, 4, 8, 16, 30, 30], Enumerable.Range(0, 7).Select(a => policy.DelayFor(a).TotalSeconds));
        Assert.Equal(TimeSpan.FromSeconds(30), policy.DelayFor(1000));
    }

    [Theory]
    [InlineData("auto", null)]
    [InlineData("/dev/nbd0", 0)]
    [InlineData("/dev/nbd15", 15)]
    [InlineData("ublk", null, true)]
    [InlineData("/dev/ublkb0", 0, true)]
    [InlineData("/dev/ublkb7", 7, true)]
    public void Device_selection_parses_and_prints_back(string text, int? index, bool ublk = false)
    {
        Assert.True(DeviceSelection.TryParse(text, out var selection));
        Assert.Equal(index, selection.Index);
        Assert.Equal(ublk, selection.Ublk);
        Assert.Equal(text, selection.ToString());
    }

    [Theory]
    [InlineData("/dev/nbd")]
    [InlineData("/dev/nbd01")]
    [InlineData("/dev/nbd-1")]
    [InlineData("/dev/sda")]
    [InlineData("AUTO")]
    [InlineData("/dev/ublkc0")]
    [InlineData("/dev/ublkb")]
    [InlineData("UBLK")]
    public void Other_devices_are_refused(string text) => Assert.False(DeviceSelection.TryParse(text, out _));

    [Fact]
    public void Nbd_uris_follow_the_nbd_uri_format()
    {
        Assert.Equal("nbd+unix:///disk%201?socket=/run/x.sock", NbdUri.ForUnixSocket("/run/x.sock", "disk 1"));
        Assert.Equal("nbd+unix:///?socket=/run/x.sock", NbdUri.ForUnixSocket("/run/x.sock", ""));
        Assert.Equal("nbd://[::1]:10809/a", NbdUri.ForTcp(new HostPort("::1", 10809), "a"));
        Assert.Equal("nbd://127.0.0.1:10900/", NbdUri.ForTcp(new HostPort("127.0.0.1", 10900), ""));
    }

    [Theory]
    [InlineData("iqn.2003-01.org.example:disk1", true)]
    [InlineData("iqn.2001-04.com.example", true)]
    [InlineData("eui.0123456789ABCDEF", true)]
    [InlineData("naa.52004567BA64678D", true)]
    [InlineData("naa.6001405f0123456789abcdef01234567", true)]
    [InlineData("iqn.2003-1.org.example:x", false)]
    [InlineData("iqn.2003-01:disk", false)]
    [InlineData("eui.0123", false)]
    [InlineData("disk1", false)]
    public void Iscsi_names_follow_rfc_7143(string name, bool valid) => Assert.Equal(valid, IscsiNameSyntax.IsValid(name));
}
