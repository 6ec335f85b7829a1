using IserBlockd.Iscsi.Security;
using IserBlockd.Iscsi.Sessions;
using IserBlockd.Iscsi.Transport;
using Microsoft.Extensions.Logging;

namespace IserBlockd.Iscsi.Discovery;

/// <summary>Options of a SendTargets discovery: the portal to ask, who asks, and discovery CHAP if required.</summary>
public sealed record DiscoveryOptions
{
    public required IscsiPortal Portal { get; init; }
    public required string InitiatorName { get; init; }
    public ChapCredentials? Chap { get; init; }
    public ChapCredentials? TargetChap { get; init; }
    public IReadOnlyList<ChapAlgorithm> ChapAlgorithms { get; init; } = [ChapAlgorithm.Md5];
    public TimeSpan LoginTimeout { get; init; } = TimeSpan.FromSeconds(15);
}

/// <summary>
/// SendTargets discovery as iscsiadm -m discovery -t st does it: a discovery session on one portal,
/// SendTargets=All, logout.
/// </summary>
public static class SendTargetsDiscovery
{
    public static async Task<IReadOnlyList<DiscoveredTarget>> DiscoverAsync(IIscsiTransport transport, DiscoveryOptions options,
        ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default)
    {
        var sessionOptions = new IscsiSessionOptions
        {
            Portals = [options.Portal],
            InitiatorName = options.InitiatorName,
            SessionType = IscsiSessionType.Discovery,
            Chap = options.Chap,
            TargetChap = options.TargetChap,
            ChapAlgorithms = options.ChapAlgorithms,
            LoginTimeout = options.LoginTimeout,
        };
        await using var session = await IscsiSession.LoginAsync(transport, sessionOptions, loggerFactory, cancellationToken).ConfigureAwait(false);
        var targets = await session.SendTargetsAsync("All", cancellationToken).ConfigureAwait(false);
        await session.LogoutAsync(cancellationToken).ConfigureAwait(false);
        return targets;
    }
}
