using IserBlockd.Iscsi;
using IserBlockd.Iscsi.Negotiation;
using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.Scsi;
using IserBlockd.Iscsi.ConnectionPort;
using IserBlockd.Transport.Tcp;

namespace IserBlockd.Fuzz.Targets;

/// <summary>
/// A target's byte stream in the full feature phase: TCP framing (AHS, padding, header and data digests, chosen by
/// the first input byte), then every PDU decoded by its opcode as the session does: header fields, AHS, text keys,
/// sense data in SCSI Responses and Asynchronous Messages.
/// </summary>
public sealed class IscsiPduTarget : IFuzzTarget
{
    private const int MaxRecvDataSegmentLength = 262144;

    public string Name => "iscsi-pdu";

    public IReadOnlyList<string> Instrumented => ["IserBlockd.Iscsi.dll", "IserBlockd.Transport.dll"];

    public void Run(ReadOnlySpan<byte> input)
    {
        if (input.Length < 1) return;
        var flags = input[0];
        var connection = new TcpIscsiConnection(new ReplayStream(input[1..].ToArray(), chunk: 1 + (flags >> 4) * 97), null, null);
        var parameters = new NegotiatedParameters
        {
            HeaderDigest = (flags & 1) != 0 ? DigestType.Crc32C : DigestType.None,
            DataDigest = (flags & 2) != 0 ? DigestType.Crc32C : DigestType.None,
            MaxRecvDataSegmentLength = MaxRecvDataSegmentLength,
        };
        try
        {
            connection.StartFullFeaturePhaseAsync(new FullFeaturePhaseContext(parameters, 32), default).AsTask().GetAwaiter().GetResult();
            for (var i = 0; i < 64; i++)
            {
                var pdu = connection.ReceiveHeaderAsync(default).AsTask().GetAwaiter().GetResult();
                var header = pdu.Header.Span;
                if (header.Length > BasicHeaderSegment.Length)
                    AdditionalHeaderSegment.Parse(header[BasicHeaderSegment.Length..], out _, out _);
                // The session refuses a segment over what it declared before asking for the data (FullFeaturePhase).
                if (pdu.DataSegmentLength > MaxRecvDataSegmentLength) return;
                var destination = pdu.Opcode == IscsiOpcode.DataIn && (flags & 4) != 0 ? new byte[pdu.DataSegmentLength] : Memory<byte>.Empty;
                var data = pdu.DataSegmentLength > 0
                    ? connection.ReceiveDataAsync(destination, default).AsTask().GetAwaiter().GetResult()
                    : ReadOnlyMemory<byte>.Empty;
                Decode(pdu.Opcode, header, data.Span);
            }
        }
        catch (IscsiException)
        {
            // A clear protocol error: what the session reports before it drops the connection.
        }
    }

    private static void Decode(IscsiOpcode opcode, ReadOnlySpan<byte> header, ReadOnlySpan<byte> data)
    {
        switch (opcode)
        {
            case IscsiOpcode.NopIn: _ = NopInPdu.Read(header); break;
            case IscsiOpcode.ScsiResponse:
                _ = ScsiResponsePdu.Read(header);
                if (data.Length >= 2)
                {
                    var senseLength = data[0] << 8 | data[1];
                    if (senseLength <= data.Length - 2) _ = SenseData.TryParse(data.Slice(2, senseLength))?.ToString();
                }
                break;
            case IscsiOpcode.TaskManagementResponse: _ = TaskManagementResponsePdu.Read(header); break;
            case IscsiOpcode.LoginResponse: _ = LoginResponsePdu.Read(header); _ = TextKeyValues.Parse(data); break;
            case IscsiOpcode.TextResponse: _ = TextResponsePdu.Read(header); _ = TextKeyValues.Parse(data); break;
            case IscsiOpcode.DataIn: _ = DataInPdu.Read(header); break;
            case IscsiOpcode.LogoutResponse: _ = LogoutResponsePdu.Read(header); break;
            case IscsiOpcode.ReadyToTransfer: _ = ReadyToTransferPdu.Read(header); break;
            case IscsiOpcode.AsyncMessage:
                var message = AsyncMessagePdu.Read(header);
                _ = LunAddress.Decode(message.Lun);
                if (data.Length >= 2)
                {
                    var senseLength = data[0] << 8 | data[1];
                    if (senseLength <= data.Length - 2) _ = SenseData.TryParse(data.Slice(2, senseLength))?.ToString();
                }
                break;
            case IscsiOpcode.Reject:
                _ = RejectPdu.Read(header);
                if (data.Length >= BasicHeaderSegment.Length) _ = BasicHeaderSegment.GetOpcode(data);
                break;
            // What a target would never send, decoded anyway: the readers must not trust the opcode either.
            case IscsiOpcode.NopOut: _ = NopOutPdu.Read(header); break;
            case IscsiOpcode.ScsiCommand: _ = ScsiCommandPdu.ReadHeader(header); break;
            case IscsiOpcode.TaskManagementRequest: _ = TaskManagementRequestPdu.Read(header); break;
            case IscsiOpcode.LoginRequest: _ = LoginRequestPdu.Read(header); _ = TextKeyValues.Parse(data); break;
            case IscsiOpcode.TextRequest: _ = TextRequestPdu.Read(header); break;
            case IscsiOpcode.DataOut: _ = DataOutPdu.Read(header); break;
            case IscsiOpcode.LogoutRequest: _ = LogoutRequestPdu.Read(header); break;
        }
    }

    public IEnumerable<(string Name, byte[] Data)> Seeds()
    {
        string[] captures = [IscsiSeeds.UnitAttention, IscsiSeeds.InquiryDataIn, IscsiSeeds.ReadCapacityDataIn,
            IscsiSeeds.DeviceIdentificationDataIn, IscsiSeeds.LogoutResponse, IscsiSeeds.LoginResponse2];
        var all = IscsiSeeds.Concat(captures.Select(IscsiSeeds.Hex).ToArray());
        yield return ("tgtd-capture", [0, .. all]);
        yield return ("tgtd-capture-into-buffer", [4, .. all]);
        yield return ("with-digests", [3, .. WithDigests(all)]);
    }

    /// <summary>The same PDUs with CRC32C header and data digests, as a target with digests on sends them.</summary>
    private static byte[] WithDigests(byte[] stream)
    {
        var output = new List<byte>();
        var offset = 0;
        while (offset < stream.Length)
        {
            var bhs = stream.AsSpan(offset);
            var headerLength = BasicHeaderSegment.Length + BasicHeaderSegment.GetTotalAhsLength(bhs);
            var dataLength = BasicHeaderSegment.GetDataSegmentLength(bhs);
            var padded = dataLength + PduLayout.Padding(dataLength);
            output.AddRange(stream.AsSpan(offset, headerLength));
            AddDigest(output, stream.AsSpan(offset, headerLength));
            if (dataLength > 0)
            {
                output.AddRange(stream.AsSpan(offset + headerLength, padded));
                AddDigest(output, stream.AsSpan(offset + headerLength, padded));
            }
            offset += headerLength + padded;
        }
        return output.ToArray();
    }

    private static void AddDigest(List<byte> output, ReadOnlySpan<byte> covered)
    {
        var digest = new byte[4];
        Crc32C.WriteDigest(digest, Crc32C.Compute(covered));
        output.AddRange(digest);
    }
}
