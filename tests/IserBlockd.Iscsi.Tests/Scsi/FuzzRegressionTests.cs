using IserBlockd.Iscsi.Scsi;

namespace IserBlockd.Iscsi.Tests.ScsiModel;

/// <summary>Inputs the fuzzer (tests/fuzz, target scsi-data) found to crash a parser; each must now parse or be refused cleanly.</summary>
public sealed class ScsiFuzzRegressionTests
{
    [Fact]
    public void Descriptor_sense_shorter_than_its_8_byte_header_is_parsed_without_descriptors()
    {
        // tests/fuzz/regressions/scsi-data/sense-descriptor-shorter-than-header: 72 00 00 2a (ArgumentOutOfRangeException before)
        var sense = SenseData.TryParse([0x72, 0x00, 0x00, 0x2a]);
        Assert.NotNull(sense);
        Assert.Equal(SenseKey.NoSense, sense.Key);
        Assert.Equal(0x00, sense.AdditionalSenseCode);
        Assert.Equal(0x2a, sense.AdditionalSenseCodeQualifier);
        Assert.Null(sense.Information);
    }

    [Fact]
    public void Descriptor_sense_with_a_longer_additional_length_than_received_reads_what_is_there()
    {
        // UNIT ATTENTION 29/00 claiming 0x20 more bytes but truncated after an incomplete information descriptor
        var sense = SenseData.TryParse(Convert.FromHexString("7206290000000020000a80"));
        Assert.NotNull(sense);
        Assert.Equal(SenseKey.UnitAttention, sense.Key);
        Assert.Null(sense.Information);
    }
}
