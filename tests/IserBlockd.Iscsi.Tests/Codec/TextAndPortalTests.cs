using IserBlockd.Iscsi.Negotiation;

namespace IserBlockd.Iscsi.Tests.Codec;

public sealed class TextAndPortalTests
{
    [Fact]
    public void Text_keys_keep_order_and_repeats()
    {
        var bytes = "TargetName=iqn.a\0TargetAddress=10.0.0.1:3260,1\0TargetAddress=[fe80::1]:3260,2\0TargetName=iqn.b\0\0\0"u8.ToArray();
        var keys = TextKeyValues.Parse(bytes);
        Assert.Equal(["TargetName", "TargetAddress", "TargetAddress", "TargetName"], keys.Select(k => k.Key));
        Assert.Equal("[fe80::1]:3260,2", keys[2].Value);
        Assert.Equal(bytes.AsSpan(0, bytes.Length - 2).ToArray(), TextKeyValues.Format(keys));
    }

    [Theory]
    [InlineData("Key=Value")] // no terminating NUL
    [InlineData("NoEquals\0")]
    [InlineData("=Value\0")]
    [InlineData("Bad Key=1\0")]
    public void Malformed_text_is_a_protocol_error(string text)
        => Assert.Throws<IscsiProtocolException>(() => TextKeyValues.Parse(System.Text.Encoding.UTF8.GetBytes(text)));

    [Fact]
    public void Chap_values_never_appear_in_logs()
    {
        var line = TextKeyValues.ToLogString([new("CHAP_N", "alice"), new("CHAP_R", "0xdeadbeef"), new("CHAP_C", "0x1234")]);
        Assert.Equal("CHAP_N=alice CHAP_R=<hidden> CHAP_C=<hidden>", line);
    }

    [Theory]
    [InlineData("10.1.2.3", "10.1.2.3", 3260, null, "10.1.2.3:3260")]
    [InlineData("10.1.2.3:3261", "10.1.2.3", 3261, null, "10.1.2.3:3261")]
    [InlineData("10.1.2.3:3261,7", "10.1.2.3", 3261, 7, "10.1.2.3:3261,7")]
    [InlineData("[2001:db8::1]", "2001:db8::1", 3260, null, "[2001:db8::1]:3260")]
    [InlineData("[2001:db8::1]:3262,1", "2001:db8::1", 3262, 1, "[2001:db8::1]:3262,1")]
    [InlineData("2001:db8::1", "2001:db8::1", 3260, null, "[2001:db8::1]:3260")]
    [InlineData("san.example.com:3260,1", "san.example.com", 3260, 1, "san.example.com:3260,1")]
    public void Portals(string text, string host, int port, int? tpgt, string printed)
    {
        var portal = IscsiPortal.Parse(text);
        Assert.Equal((host, port, tpgt), (portal.Host, portal.Port, portal.PortalGroupTag));
        Assert.Equal(printed, portal.ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("[2001:db8::1")]
    [InlineData("[10.0.0.1]:3260")]
    [InlineData("host:0")]
    [InlineData("host:99999")]
    [InlineData("host:3260,x")]
    public void Bad_portals(string text) => Assert.False(IscsiPortal.TryParse(text, out _, out _));

    [Fact]
    public void Isid_text_and_bytes()
    {
        var isid = Isid.Parse("0x400001370000");
        Assert.Equal("400001370000", isid.ToString());
        var bytes = new byte[6];
        isid.Write(bytes);
        Assert.Equal([0x40, 0x00, 0x01, 0x37, 0x00, 0x00], bytes);
        Assert.Equal(isid, Isid.Read(bytes));
        Assert.Equal(0x80, (byte)(Isid.CreateRandom().Value >> 40)); // random format, T = 10b
    }

    [Theory]
    [InlineData(1u, 2u, true)]
    [InlineData(0xffff_fff0u, 5u, true)]
    [InlineData(5u, 0xffff_fff0u, false)]
    [InlineData(7u, 7u, false)]
    public void Serial_number_arithmetic(uint a, uint b, bool less) => Assert.Equal(less, SerialNumber.LessThan(a, b));
}
