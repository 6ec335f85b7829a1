using IserBlockd.Iscsi.Negotiation;
using IserBlockd.Iscsi.Pdu;

namespace IserBlockd.Fuzz;

/// <summary>
/// Seed PDUs: tgtd's answers captured for tests/IserBlockd.Iscsi.Tests (TgtdCaptureTests), and login/text
/// answers built with our own encoders the way the unit tests' fake target builds them.
/// </summary>
public static class IscsiSeeds
{
    // From TgtdCaptureTests: tgtd 1.0.85's login answers, a UNIT ATTENTION, Data-In with INQUIRY, READ CAPACITY(16)
    // and VPD 0x83 data, and a Logout Response.
    public const string LoginResponse1 =
        "2381000000000027801c8d9c00000000420b15a400000000000000000000000100000002000000000000000000000000546172676574506f7274616c47726f75705461673d3100417574684d6574686f643d4e6f6e650000";
    public const string LoginResponse2 =
        "23870000000000fd801c8d9c00000100420b15a4000000000000000100000001000000020000000000000000000000004865616465724469676573743d4e6f6e6500446174614469676573743d4e6f6e650044656661756c7454696d6532576169743d320044656661756c7454696d653252657461696e3d30004572726f725265636f766572794c6576656c3d3000496e697469616c5232543d59657300496d6d656469617465446174613d596573004d617842757273744c656e6774683d32363231343400466972737442757273744c656e6774683d3635353336004d61784f75747374616e64696e675232543d31004d6178436f6e6e656374696f6e733d310044617461504455496e4f726465723d596573004461746153657175656e6365496e4f726465723d59657300000000";
    public const string UnitAttention =
        "2180000200000014000000000000000000010000000000000000000200000002000000820000000000000000000000000012700006000000000a00000000290000000000";
    public const string InquiryDataIn =
        "2583000000000042000000000000000000030000ffffffff00000004000000040000008400000000000000000000001e000005123d00000249455420202020205649525455414c2d4449534b20202020303030310000000000000000000000000000000000000000000004c00960030000000000";
    public const string ReadCapacityDataIn =
        "2581000000000020000000000000000000040000ffffffff0000000500000005000000850000000000000000000000000000000000003fff000002000003000000000000000000000000000000000000";
    public const string DeviceIdentificationDataIn =
        "258300000000004c000000000000000000070000ffffffff0000000800000008000000880000000000000000000003b400830048020100244945542020202020303030313030303100000000000000000000000000000000000000000103000830000001000000010103001060000000000000000e00000000010001";
    public const string LogoutResponse = "2680000000000000000000000000000080000001000000000000000b0000000a0000008a000000000000000000000000";

    public static byte[] Hex(string hex) => Convert.FromHexString(hex);

    /// <summary>A Login Response PDU with its data segment, padded.</summary>
    public static byte[] LoginResponse(LoginStage current, LoginStage next, bool transit, uint statSN, params (string Key, string Value)[] keys)
    {
        var data = TextKeyValues.Format(keys.Select(k => new KeyValuePair<string, string>(k.Key, k.Value)));
        var pdu = new LoginResponsePdu
        {
            Transit = transit, CurrentStage = current, NextStage = next, DataSegmentLength = data.Length,
            Tsih = transit && next == LoginStage.FullFeaturePhase ? (ushort)1 : (ushort)0,
            StatSN = statSN, ExpCmdSN = 1, MaxCmdSN = 32,
        };
        return Frame(bhs => pdu.Write(bhs), data);
    }

    /// <summary>A final Text Response with the given keys.</summary>
    public static byte[] TextResponse(uint statSN, params (string Key, string Value)[] keys)
    {
        var data = TextKeyValues.Format(keys.Select(k => new KeyValuePair<string, string>(k.Key, k.Value)));
        var pdu = new TextResponsePdu { Final = true, DataSegmentLength = data.Length, TargetTransferTag = 0xffff_ffff, StatSN = statSN, ExpCmdSN = 2, MaxCmdSN = 32 };
        return Frame(bhs => pdu.Write(bhs), data);
    }

    public static byte[] Frame(Action<byte[]> writeHeader, ReadOnlySpan<byte> data)
    {
        var bhs = new byte[BasicHeaderSegment.Length];
        writeHeader(bhs);
        var result = new byte[bhs.Length + data.Length + PduLayout.Padding(data.Length)];
        bhs.CopyTo(result, 0);
        data.CopyTo(result.AsSpan(bhs.Length));
        return result;
    }

    public static byte[] Concat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();

    /// <summary>One-way CHAP answered the way tgtd answers it (CHAP_A=5, then CHAP_I/CHAP_C), then the operational stage.</summary>
    public static byte[] ChapLogin(string algorithm) => Concat(
        LoginResponse(LoginStage.SecurityNegotiation, LoginStage.SecurityNegotiation, false, 0, ("TargetPortalGroupTag", "1"), ("AuthMethod", "CHAP")),
        LoginResponse(LoginStage.SecurityNegotiation, LoginStage.SecurityNegotiation, false, 0, ("CHAP_A", algorithm), ("CHAP_I", "7"), ("CHAP_C", "0x0123456789abcdef0123456789abcdef")),
        LoginResponse(LoginStage.SecurityNegotiation, LoginStage.OperationalNegotiation, true, 0, ("CHAP_N", "target"), ("CHAP_R", "0x00112233445566778899aabbccddeeff")),
        Hex(LoginResponse2));
}
