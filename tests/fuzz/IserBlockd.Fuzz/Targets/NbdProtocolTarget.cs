using IserBlockd.BlockDev.Nbd.Protocol;

namespace IserBlockd.Fuzz.Targets;

/// <summary>Each NBD message reader on its own, chosen by the first input byte: what a server or client parses from its peer.</summary>
public sealed class NbdProtocolTarget : IFuzzTarget
{
    public string Name => "nbd-protocol";

    public IReadOnlyList<string> Instrumented => ["IserBlockd.BlockDev.dll"];

    public void Run(ReadOnlySpan<byte> input)
    {
        if (input.Length < 1) return;
        var data = input[1..];
        try
        {
            switch (input[0] % 16)
            {
                case 0: if (data.Length >= NbdRequest.Size) _ = NbdRequest.TryRead(data, out _); break;
                case 1: if (data.Length >= NbdOptionHeader.Size) _ = NbdOptionHeader.Read(data); break;
                case 2: _ = NbdExportInfoRequest.Parse(data); break;
                case 3: _ = NbdString.Read(data); break;
                case 4: if (data.Length >= NbdClientGreeting.Size) _ = NbdClientGreeting.Read(data); break;
                case 5: if (data.Length >= NbdServerGreeting.Size) _ = NbdServerGreeting.Read(data); break;
                case 6: if (data.Length >= NbdOptionReplyHeader.Size) _ = NbdOptionReplyHeader.Read(data); break;
                case 7: if (data.Length >= NbdSimpleReply.Size) _ = NbdSimpleReply.Read(data); break;
                case 8: if (data.Length >= NbdStructuredReplyHeader.Size) _ = NbdStructuredReplyHeader.Read(data); break;
                case 9: _ = NbdErrorChunk.ReadPayload(data); break;
                case 10: _ = NbdServerListEntry.Parse(data); break;
                case 11: _ = NbdInfoExport.Read(data); break;
                case 12: _ = NbdInfoName.Read(data); break;
                case 13: _ = NbdInfoDescription.Read(data); break;
                case 14: _ = NbdInfoBlockSize.Read(data); break;
                case 15: if (data.Length >= NbdExportNameReply.ShortSize) _ = NbdExportNameReply.Read(data); break;
            }
        }
        catch (NbdProtocolException)
        {
        }
    }

    public IEnumerable<(string Name, byte[] Data)> Seeds()
    {
        yield return ("request", [0, .. NbdSeeds.Request(NbdCommand.Read, 4096, 512)]);
        yield return ("option", [1, .. NbdSeeds.Option(NbdOption.Go, [])]);
        yield return ("info-request", [2, .. NbdSeeds.InfoRequest("disk", 0, 1, 2, 3)]);
        yield return ("string", [3, .. "export"u8]);
        yield return ("client-greeting", [4, .. NbdSeeds.ClientFlags(3)]);
        yield return ("error-chunk", [9, 0, 0, 0, 22, 0, 5, .. "hello"u8]);
        yield return ("server-list", [10, 0, 0, 0, 4, .. "disk"u8, .. "about"u8]);
        yield return ("info-export", [11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 0x4d]);
        yield return ("info-block-size", [14, 0, 3, 0, 0, 2, 0, 0, 0, 16, 0, 2, 0, 0, 0]);
    }
}
