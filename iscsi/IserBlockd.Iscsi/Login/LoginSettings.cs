using IserBlockd.Iscsi.Negotiation;
using IserBlockd.Iscsi.Security;

namespace IserBlockd.Iscsi.Login;

/// <summary>Everything one login attempt on one connection needs.</summary>
public sealed record LoginSettings
{
    public required IscsiSessionType SessionType { get; init; }
    public required string InitiatorName { get; init; }
    public string? InitiatorAlias { get; init; }
    /// <summary>Required for normal sessions, absent for discovery.</summary>
    public string? TargetName { get; init; }
    public required Isid Isid { get; init; }
    /// <summary>0 for a new session (or the reinstatement of one with the same ISID).</summary>
    public ushort Tsih { get; init; }
    public ushort ConnectionId { get; init; }
    public uint InitialCmdSN { get; init; } = 1;
    /// <summary>Our credentials: the target authenticates us (one-way CHAP).</summary>
    public ChapCredentials? Chap { get; init; }
    /// <summary>The target's credentials: we authenticate the target too (mutual CHAP). Requires <see cref="Chap"/>.</summary>
    public ChapCredentials? TargetChap { get; init; }
    public IReadOnlyList<ChapAlgorithm> ChapAlgorithms { get; init; } = [ChapAlgorithm.Md5];
    public OperationalOptions Operational { get; init; } = new();
    /// <summary>For messages: where we are logging in.</summary>
    public IscsiPortal? Portal { get; init; }

    internal string Context => SessionType == IscsiSessionType.Discovery
        ? $"discovery login at {Portal}"
        : $"login to {TargetName} at {Portal}";
}

/// <summary>The result of one login attempt: full feature phase reached, or a redirection to follow.</summary>
public sealed record LoginOutcome
{
    public NegotiatedParameters? Parameters { get; init; }
    public ushort Tsih { get; init; }
    /// <summary>StatSN + 1 of the final Login Response.</summary>
    public uint ExpStatSN { get; init; }
    public uint CmdSN { get; init; }
    public uint ExpCmdSN { get; init; }
    public uint MaxCmdSN { get; init; }
    public IscsiPortal? RedirectTo { get; init; }
    public bool RedirectIsPermanent { get; init; }
}
