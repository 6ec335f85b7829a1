using IserBlockd.Iscsi.Pdu;

namespace IserBlockd.Iscsi.Sessions;

/// <summary>Logout (RFC 7143 §11.14, §11.15): close the session, immediate.</summary>
internal static class LogoutExchange
{
    public static async Task<LogoutResponse> RunAsync(IscsiSession session, FullFeaturePhase connection, CancellationToken cancellationToken)
    {
        var response = await session.SendControlAsync(new ControlRequest(ControlKind.Logout), connection).WaitAsync(cancellationToken).ConfigureAwait(false);
        return LogoutResponsePdu.Read(response.Header).Response;
    }

    public static void Write(ControlRequest request, Span<byte> header, uint cmdSN, uint expStatSN) => new LogoutRequestPdu
    {
        Immediate = true,
        Reason = LogoutReason.CloseSession,
        InitiatorTaskTag = request.Itt,
        CmdSN = cmdSN,
        ExpStatSN = expStatSN,
    }.Write(header);
}
