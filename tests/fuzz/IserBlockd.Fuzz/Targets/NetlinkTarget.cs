using System.Text.RegularExpressions;
using IserBlockd.BlockDev.Kernel.Nbd;
using IserBlockd.BlockDev.Kernel.Netlink;

namespace IserBlockd.Fuzz.Targets;

/// <summary>
/// A datagram from the kernel on the generic netlink socket: split into messages, each read as the NBD attach
/// code reads it (error/ACK, family lookup reply, NBD_CMD_CONNECT and NBD_CMD_STATUS replies, LINK_DEAD
/// notifications), nested attributes included.
/// </summary>
public sealed partial class NetlinkTarget : IFuzzTarget
{
    public string Name => "netlink";

    public IReadOnlyList<string> Instrumented => ["IserBlockd.BlockDev.Kernel.dll"];

    public void Run(ReadOnlySpan<byte> input)
    {
        try
        {
            foreach (var message in NetlinkMessage.ParseAll(input.ToArray()))
            {
                Try(() => _ = NetlinkError.Parse(message).ToString());
                Try(() => _ = GenericNetlinkController.ParseFamily(message).MulticastGroups.Count);
                Try(() => _ = NbdNetlinkMessages.ParseConnectReply(message));
                Try(() => _ = NbdNetlinkMessages.ParseStatusReply(message).Count);
                _ = NbdNetlinkMessages.TryParseLinkDead(message, message.Type, out _, out _); // never throws
                Try(() =>
                {
                    foreach (var attribute in message.GenericAttributes.ToList())
                    {
                        _ = attribute.Payload.Length >= 4 ? attribute.AsU32() : 0;
                        _ = attribute.AsString();
                        foreach (var nested in attribute.AsNested().ToList()) _ = nested.Type;
                    }
                });
            }
        }
        catch (NetlinkException)
        {
        }
    }

    private static void Try(Action read)
    {
        try { read(); }
        catch (NetlinkException) { }
    }

    public IEnumerable<(string Name, byte[] Data)> Seeds()
    {
        // The kernel's answers from tests/IserBlockd.BlockDev.Kernel.Tests (NetlinkParsingTests, NbdNetlinkMessagesTests).
        yield return ("family", Hex("""
            60000000 1000 0000 2a000000 391a0000 01 02 0000 0800 0200 6e626400 0600 0100 1b00 0000 0800 0300 01000000
            0800 0400 00000000 0800 0500 0a000000 2400 0780 2000 0180 0800 0200 05000000 1100 0100 6e62645f6d635f67726f757000 000000
            """));
        yield return ("error", Hex("38000000 0200 0003 2a000000 391a0000 feffffff 1c000000 1000 0500 2a000000 00000000 1300 0100 556e6b6e6f776e2066616d696c7900 00"));
        yield return ("connect-and-ack", Hex("""
            1c000000 1b00 0000 05000000 00000000 01010000 0800 0100 0e000000
            24000000 0200 0001 05000000 00000000 00000000 1c000000 1b00 0500 05000000 00000000
            """));
        yield return ("status", Hex("""
            4c000000 1b00 0000 07000000 391a0000 05 01 0000 3800 0900 1400 0100 0800 0100 00000000 0500 0200 01 000000
            1400 0100 0800 0100 01000000 0500 0200 00 000000 0c00 0100 0800 0100 07000000
            """));
        yield return ("our-connect", NbdNetlinkMessages.BuildConnect(27, 1, new NbdDeviceConfiguration { SizeBytes = 1 << 30, BlockSizeBytes = 4096, TimeoutSeconds = 30, BackendIdentifier = "iserblockd" }, [3, 4]));
    }

    private static byte[] Hex(string text) => Convert.FromHexString(Whitespace().Replace(text, ""));

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();
}
