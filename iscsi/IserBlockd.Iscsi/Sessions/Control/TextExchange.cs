using IserBlockd.Iscsi.Negotiation;
using IserBlockd.Iscsi.Pdu;

namespace IserBlockd.Iscsi.Sessions;

/// <summary>Text requests in full feature phase (RFC 7143 §11.10, §11.11), with continuation.</summary>
internal static class TextExchange
{
    /// <summary>Sends the keys and collects the answer, following continuation (F=0, TTT set) until the final response.</summary>
    public static async Task<IReadOnlyList<KeyValuePair<string, string>>> RunAsync(IscsiSession session, IEnumerable<KeyValuePair<string, string>> keys, CancellationToken cancellationToken)
    {
        var data = TextKeyValues.Format(keys);
        var collected = new List<byte>();
        var ttt = BasicHeaderSegment.ReservedTag;
        uint itt = 0;
        for (var round = 0; ; round++)
        {
            if (round > 1024) throw new IscsiProtocolException("text response never finished");
            // Immediate, as libiscsi sends them: tgtd never opens the CmdSN window of a discovery session beyond
            // ExpCmdSN + 1, so a long SendTargets answer could not be continued with non-immediate requests.
            var request = new ControlRequest(ControlKind.Text) { Immediate = true, Data = data, TargetTransferTag = ttt, Itt = itt };
            var response = await session.SendControlAsync(request, null).WaitAsync(cancellationToken).ConfigureAwait(false);
            itt = request.Itt;
            var pdu = TextResponsePdu.Read(response.Header);
            collected.AddRange(response.Data);
            if (pdu.Final && !pdu.Continue) break;
            if (pdu.TargetTransferTag == BasicHeaderSegment.ReservedTag)
                throw new IscsiProtocolException("text response continues but carries no target transfer tag");
            ttt = pdu.TargetTransferTag;
            data = [];
        }
        return TextKeyValues.Parse(collected.ToArray());
    }

    /// <summary>
    /// The target asked for renegotiation (asynchronous event 4) of <paramref name="requested"/>: we answer with a
    /// Text Request that declares our values of the keys we can state (an empty one when none), and log its answer.
    /// </summary>
    public static async Task RenegotiateAsync(IscsiSession session, IReadOnlyList<KeyValuePair<string, string>> requested, Microsoft.Extensions.Logging.ILogger logger)
    {
        var offer = new List<KeyValuePair<string, string>>();
        foreach (var (key, _) in requested)
            if (key == IscsiKeys.MaxRecvDataSegmentLength)
                offer.Add(new(key, session.Parameters.MaxRecvDataSegmentLength.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var answer = await RunAsync(session, offer, timeout.Token).ConfigureAwait(false);
        SessionLog.Renegotiated(logger,
            string.Join(", ", offer.Select(k => $"{k.Key}={k.Value}")), string.Join(", ", answer.Select(k => $"{k.Key}={k.Value}")));
    }

    public static void Write(ControlRequest request, Span<byte> header, uint cmdSN, uint expStatSN) => new TextRequestPdu
    {
        Immediate = request.Immediate,
        Final = true,
        DataSegmentLength = request.Data.Length,
        Lun = 0,
        InitiatorTaskTag = request.Itt,
        TargetTransferTag = request.TargetTransferTag,
        CmdSN = cmdSN,
        ExpStatSN = expStatSN,
    }.Write(header);
}
