using IserBlockd.Iscsi.Pdu;

namespace IserBlockd.Iscsi.Tests.Codec;

/// <summary>The CRC32C examples of RFC 3720 Appendix B.4 (kept by RFC 7143), as bytes on the wire.</summary>
public sealed class Crc32CTests
{
    public static TheoryData<string, string> Rfc3720Examples => new()
    {
        { new string('0', 64), "aa36918a" },
        { string.Concat(Enumerable.Repeat("ff", 32)), "43aba862" },
        { string.Concat(Enumerable.Range(0, 32).Select(i => i.ToString("x2"))), "4e79dd46" },
        { string.Concat(Enumerable.Range(0, 32).Reverse().Select(i => i.ToString("x2"))), "5cdb3f11" },
        // "An iSCSI - SCSI Read (10) Command PDU"
        { "01c00000000000000000000000000000" + "14000000000004000000001400000018" + "28000000000000000200000000000000", "563a96d9" },
    };

    [Theory]
    [MemberData(nameof(Rfc3720Examples))]
    public void Digest_bytes_match_the_rfc(string data, string wire)
    {
        var digest = new byte[4];
        Crc32C.WriteDigest(digest, Crc32C.Compute(Convert.FromHexString(data)));
        Assert.Equal(wire, Convert.ToHexStringLower(digest));
        Assert.Equal(Crc32C.Compute(Convert.FromHexString(data)), Crc32C.ReadDigest(Convert.FromHexString(wire)));
    }

    [Fact]
    public void Incremental_equals_one_shot()
    {
        var data = new byte[1000];
        Random.Shared.NextBytes(data);
        var crc = Crc32C.CreateIncremental();
        crc.Append(data.AsSpan(0, 333));
        crc.Append(data.AsSpan(333));
        Assert.Equal(Crc32C.Compute(data), crc.GetCurrentHashAsUInt32());
    }

    [Fact]
    public void The_rfc_read10_pdu_decodes()
    {
        var pdu = ScsiCommandPdu.ReadHeader(Convert.FromHexString("01c00000000000000000000000000000" + "14000000000004000000001400000018" + "28000000000000000200000000000000"));
        Assert.False(pdu.Immediate);
        Assert.True(pdu.Final);
        Assert.True(pdu.Read);
        Assert.False(pdu.Write);
        Assert.Equal(0x14000000u, pdu.InitiatorTaskTag);
        Assert.Equal(1024u, pdu.ExpectedDataTransferLength);
        Assert.Equal(0x14u, pdu.CmdSN);
        Assert.Equal(0x18u, pdu.ExpStatSN);
        Assert.Equal(Scsi.ScsiOpcode.Read10, pdu.Cdb.Span[0]);
        Assert.Equal(2, pdu.Cdb.Span[8]);
    }
}
