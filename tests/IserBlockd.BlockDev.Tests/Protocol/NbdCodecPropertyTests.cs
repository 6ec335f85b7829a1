using FsCheck;
using FsCheck.Xunit;
using IserBlockd.BlockDev.Nbd.Protocol;

namespace IserBlockd.BlockDev.Tests.Protocol;

/// <summary>Round trips over arbitrary field values.</summary>
public class NbdCodecPropertyTests
{
    [Property]
    public bool Requests_round_trip(ushort flags, ushort command, ulong handle, ulong offset, uint length)
    {
        var request = new NbdRequest((NbdCommandFlags)flags, (NbdCommand)command, handle, offset, length);
        var bytes = new byte[NbdRequest.Size];
        request.Write(bytes);
        return NbdRequest.TryRead(bytes, out var read) && read == request;
    }

    [Property]
    public bool Option_headers_round_trip(uint option, uint length)
    {
        var header = new NbdOptionHeader((NbdOption)option, length);
        var bytes = new byte[NbdOptionHeader.Size];
        header.Write(bytes);
        return NbdOptionHeader.Read(bytes) == header;
    }

    [Property]
    public bool Go_requests_round_trip(NonNull<string> name, ushort[] requests)
    {
        var text = name.Get.Replace("\0", "");
        if (!IsValidUnicode(text) || System.Text.Encoding.UTF8.GetByteCount(text) > NbdString.MaxBytes) return true;
        var request = new NbdExportInfoRequest(text, requests.Take(100).Select(r => (NbdInfoType)r).ToArray());
        var bytes = new byte[request.GetSize()];
        request.Write(bytes);
        var read = NbdExportInfoRequest.Parse(bytes);
        return read.ExportName == text && read.InformationRequests.SequenceEqual(request.InformationRequests);
    }

    [Property]
    public bool Truncated_go_requests_never_parse_wrongly(byte[] junk)
    {
        // Arbitrary bytes either parse into something self-consistent or are refused; nothing else escapes.
        try
        {
            var request = NbdExportInfoRequest.Parse(junk);
            return request.GetSize() == junk.Length;
        }
        catch (NbdProtocolException)
        {
            return true;
        }
    }

    private static bool IsValidUnicode(string s)
    {
        try
        {
            new System.Text.UTF8Encoding(false, true).GetByteCount(s);
            return true;
        }
        catch (System.Text.EncoderFallbackException)
        {
            return false;
        }
    }
}
