using IserBlockd.Iscsi.Security;
using IserBlockd.Iscsi.Sessions;
using IserBlockd.Iscsi.ConnectionPort;
using Microsoft.Extensions.Logging;

namespace IserBlockd.Iscsi.Discovery;

/// <summary>
/// SendTargets discovery as iscsiadm -m discovery -t st does it: a discovery session on one portal,
/// SendTargets=All, logout. The options are a normal session's (the first portal is asked; who asks, discovery CHAP,
/// login timeout): one mapping from configuration or command line to a session serves both kinds.
/// </summary>
public static class SendTargetsDiscovery
{
    public static async Task<IReadOnlyList<DiscoveredTarget>> DiscoverAsync(IIscsiTransport transport, IscsiSessionOptions options,
        ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default)
    {
        var sessionOptions = options with { Portals = [options.Portals[0]], SessionType = IscsiSessionType.Discovery, TargetName = null };
        await using var session = await IscsiSession.LoginAsync(transport, sessionOptions, loggerFactory, cancellationToken).ConfigureAwait(false);
        var targets = await session.SendTargetsAsync("All", cancellationToken).ConfigureAwait(false);
        await session.LogoutAsync(cancellationToken).ConfigureAwait(false);
        return targets;
    }
}
