using IserBlockd.Iscsi;
using IserBlockd.Iscsi.Pdu;

namespace IserBlockd.Transport.Iser;

/// <summary>What an arriving PDU does to iSER's flow control (RFC 7145 §8): whether it fills the receive buffer its
/// request reserved or one of the reserve kept for what the target sends unasked.</summary>
internal enum ArrivalKind : byte
{
    /// <summary>Answers a request we sent (SCSI Response, Login/Text/Logout/TMF response, NOP-In echo).</summary>
    Answer,
    /// <summary>Answers one of the control requests counted against the target's MaxOutstandingUnexpectedPDUs.</summary>
    ControlAnswer,
    /// <summary>Sent by the target on its own (NOP-In ping, asynchronous message, Reject of something unanswered).</summary>
    Unsolicited,
}

/// <summary>
/// The flow-control rules of an iSER connection (RFC 7145 §8, §6.4) as functions of the PDUs: which requests need a
/// posted receive buffer for their answer, which count against the target's MaxOutstandingUnexpectedPDUs, and what kind
/// of arrival a received message is.
/// </summary>
internal static class IserArrivals
{
    /// <summary>What kind of arrival <paramref name="message"/> (iSER header, BHS, ...) is; <paramref name="answeredCommand"/>
    /// is the ITT of the SCSI command it answers (else the reserved tag).</summary>
    public static ArrivalKind Classify(ReadOnlySpan<byte> message, out uint answeredCommand)
    {
        var bhs = message.Slice(IserHeader.Length, BasicHeaderSegment.Length);
        var itt = BasicHeaderSegment.GetInitiatorTaskTag(bhs);
        answeredCommand = BasicHeaderSegment.ReservedTag;
        switch (BasicHeaderSegment.GetOpcode(bhs))
        {
            case IscsiOpcode.ScsiResponse:
                answeredCommand = itt;
                return ArrivalKind.Answer;
            case IscsiOpcode.NopIn:
                return itt == BasicHeaderSegment.ReservedTag ? ArrivalKind.Unsolicited : ArrivalKind.ControlAnswer;
            case IscsiOpcode.TaskManagementResponse:
            case IscsiOpcode.TextResponse:
            case IscsiOpcode.LogoutResponse:
                return ArrivalKind.ControlAnswer;
            case IscsiOpcode.AsyncMessage:
                return ArrivalKind.Unsolicited;
            case IscsiOpcode.Reject:
            {
                // The rejected PDU's header is the data segment: the Reject answers it if it was waiting for an answer.
                var start = IserConnection.HeadersLength + BasicHeaderSegment.GetTotalAhsLength(bhs);
                if (message.Length < start + BasicHeaderSegment.Length) return ArrivalKind.Answer;
                var rejected = message.Slice(start, BasicHeaderSegment.Length);
                var rejectedItt = BasicHeaderSegment.GetInitiatorTaskTag(rejected);
                var rejectedOpcode = BasicHeaderSegment.GetOpcode(rejected);
                if (!ExpectsAnswer(rejectedOpcode, rejectedItt)) return ArrivalKind.Unsolicited;
                if (rejectedOpcode == IscsiOpcode.ScsiCommand) answeredCommand = rejectedItt;
                return CountsAsControl(rejectedOpcode, rejectedItt) ? ArrivalKind.ControlAnswer : ArrivalKind.Answer;
            }
            default:
                return ArrivalKind.Answer;
        }
    }

    /// <summary>A request the target answers with exactly one PDU, which needs a posted receive buffer.</summary>
    public static bool ExpectsAnswer(IscsiOpcode opcode, uint itt) => opcode switch
    {
        IscsiOpcode.NopOut => itt != BasicHeaderSegment.ReservedTag,
        IscsiOpcode.ScsiCommand or IscsiOpcode.TaskManagementRequest or IscsiOpcode.LoginRequest
            or IscsiOpcode.TextRequest or IscsiOpcode.LogoutRequest => true,
        _ => false,
    };

    /// <summary>A control request the target did not ask for, limited by its MaxOutstandingUnexpectedPDUs (RFC 7145 §6.4).</summary>
    public static bool CountsAsControl(IscsiOpcode opcode, uint itt) => opcode switch
    {
        IscsiOpcode.NopOut => itt != BasicHeaderSegment.ReservedTag,
        IscsiOpcode.TaskManagementRequest or IscsiOpcode.TextRequest or IscsiOpcode.LogoutRequest => true,
        _ => false,
    };
}
