using IserBlockd.Iscsi;
using IserBlockd.Iscsi.Scsi;

namespace IserBlockd.Fuzz.Targets;

/// <summary>
/// SCSI data a target returns, chosen by the first input byte: sense data (fixed and descriptor format), standard
/// INQUIRY, the VPD pages we read (supported pages, serial number, device identification, Block Limits, Logical
/// Block Provisioning), READ CAPACITY(10)/(16) and REPORT LUNS.
/// </summary>
public sealed class ScsiDataTarget : IFuzzTarget
{
    public string Name => "scsi-data";

    public IReadOnlyList<string> Instrumented => ["IserBlockd.Iscsi.dll"];

    public void Run(ReadOnlySpan<byte> input)
    {
        if (input.Length < 1) return;
        var data = input[1..];
        try
        {
            switch (input[0] % 10)
            {
                case 0: _ = SenseData.TryParse(data)?.ToString(); break;
                case 1: _ = InquiryData.Parse(data).ToString(); break;
                case 2: _ = VpdPage.ParseSupportedPages(data); break;
                case 3: _ = VpdPage.ParseUnitSerialNumber(data); break;
                case 4: foreach (var d in Designator.ParsePage(data)) _ = d.ToString(); break;
                case 5: _ = BlockLimits.Parse(data).ToString(); break;
                case 6: _ = LogicalBlockProvisioning.Parse(data).ToString(); break;
                case 7: _ = ReadCapacityData.Parse10(data).ToString(); break;
                case 8: _ = ReadCapacityData.Parse16(data).ToString(); break;
                case 9: foreach (var lun in LunAddress.ParseReportLuns(data)) _ = LunAddress.Decode(lun); break;
            }
        }
        catch (IscsiException)
        {
        }
    }

    public IEnumerable<(string Name, byte[] Data)> Seeds()
    {
        // From tests/IserBlockd.Iscsi.Tests (TgtdCaptureTests, ScsiDataTests): tgtd's sense, INQUIRY, READ CAPACITY(16) and VPD 0x83 data.
        yield return ("sense-fixed", [0, .. IscsiSeeds.Hex("700006000000000a00000000290000000000")]);
        yield return ("sense-descriptor", [0, .. IscsiSeeds.Hex("720300000000000c000a8000000000000000002a")]);
        yield return ("inquiry", [1, .. IscsiSeeds.Hex(IscsiSeeds.InquiryDataIn)[48..(48 + 66)]]);
        yield return ("vpd-00", [2, .. IscsiSeeds.Hex("0000000600808384b0b1b2")]);
        yield return ("vpd-80", [3, .. IscsiSeeds.Hex("008000083030303130303031")]);
        yield return ("vpd-83", [4, .. IscsiSeeds.Hex(IscsiSeeds.DeviceIdentificationDataIn)[48..(48 + 76)]]);
        yield return ("vpd-b0", [5, .. IscsiSeeds.Hex("00b0003c0000000000000000000040000000000000001000ffffffff00000008000000000000000000000000000000000000000000000000000000000000000000")]);
        yield return ("vpd-b2", [6, .. IscsiSeeds.Hex("00b200040000e200")]);
        yield return ("capacity10", [7, .. IscsiSeeds.Hex("00003fff00000200")]);
        yield return ("capacity16", [8, .. IscsiSeeds.Hex(IscsiSeeds.ReadCapacityDataIn)[48..(48 + 32)]]);
        yield return ("report-luns", [9, .. IscsiSeeds.Hex("00000010000000000000000000000000000100000000000000")]);
    }
}
