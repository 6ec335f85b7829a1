using System.Net;
using System.Net.Sockets;
using IserBlockd.Iscsi;
using IserBlockd.Iscsi.Discovery;
using IserBlockd.Iscsi.Login;
using IserBlockd.Iscsi.Sessions;
using IserBlockd.Iscsi.ConnectionPort;
using IserBlockd.Rdma;
using IserBlockd.Transport.Iser;
using IserBlockd.Transport.Tcp;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace IserBlockd.Transport.Selection;

/// <summary>The transport a session uses, and why (for the log and for <c>iserblockctl list</c>).</summary>
public sealed record TransportChoice(IIscsiTransport Transport, string Reason)
{
    public string Name => Transport.Name;

    /// <summary>The iSER transport when iSER was chosen (its registered pool serves zero-copy buffers), else null.</summary>
    public IserTransport? Iser => Transport as IserTransport;
}

/// <summary>
/// The one place that turns <c>tcp</c>, <c>iser</c> or <c>auto</c> into a transport, for the daemon and the command
/// line alike. <c>auto</c> takes iSER when an RDMA device routes to the first portal and the target then accepts the
/// iSER connection and RDMAExtensions=Yes; otherwise it logs why and logs in over TCP. The choice is made once per
/// login: the session keeps its transport across reinstatements.
/// </summary>
public sealed class TransportChooser
{
    private readonly TcpTransportOptions? _tcpOptions;
    private readonly IserTransportOptions? _iserOptions;
    private readonly IserDeviceRegistry? _devices;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;

    public TransportChooser(TcpTransportOptions? tcp = null, IserTransportOptions? iser = null, IserDeviceRegistry? devices = null,
        ILoggerFactory? loggerFactory = null)
    {
        _tcpOptions = tcp;
        _iserOptions = iser;
        _devices = devices;
        _loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
        _logger = _loggerFactory.CreateLogger("IserBlockd.Transport.Selection");
    }

    /// <summary>How long <c>auto</c> waits for RDMA-CM to resolve a route to the portal.</summary>
    public TimeSpan RouteCheckTimeout { get; init; } = TimeSpan.FromSeconds(3);

    public TcpIscsiTransport CreateTcp() => new(_tcpOptions);

    public IserTransport CreateIser() => new(_iserOptions, _devices, _loggerFactory);

    /// <summary>
    /// The transport for <paramref name="kind"/> without logging in: for <c>auto</c>, iSER when an RDMA device routes
    /// to the first portal (whether the target accepts RDMAExtensions is only known at login; see <see cref="LoginAsync"/>).
    /// </summary>
    public async Task<TransportChoice> ChooseAsync(IscsiTransportKind kind, IscsiPortal portal, CancellationToken cancellationToken = default)
    {
        switch (kind)
        {
            case IscsiTransportKind.Tcp:
                return new TransportChoice(CreateTcp(), "transport tcp as configured");
            case IscsiTransportKind.Iser:
                return new TransportChoice(CreateIser(), "transport iser as configured");
        }
        var route = await CheckRouteAsync(portal, cancellationToken).ConfigureAwait(false);
        return route.IsReachable
            ? new TransportChoice(CreateIser(), $"transport auto: iSER ({route.Reason})")
            : new TransportChoice(CreateTcp(), $"transport auto: TCP ({route.Reason})");
    }

    /// <summary>
    /// Logs in over the transport <paramref name="kind"/> names. With <c>auto</c>, a target that refuses the iSER
    /// connection or RDMAExtensions=Yes is logged into again over TCP, and the reason is logged.
    /// </summary>
    public Task<(IscsiSession Session, TransportChoice Choice)> LoginAsync(IscsiTransportKind kind, IscsiSessionOptions options,
        CancellationToken cancellationToken = default) =>
        RunAsync(kind, options.Portals[0], options.TargetName ?? "session", "; the target accepted RDMAExtensions=Yes",
            (transport, token) => IscsiSession.LoginAsync(transport, options, _loggerFactory, token), cancellationToken, sessionEnds: false);

    /// <summary>SendTargets discovery over the transport <paramref name="kind"/> names (with <c>auto</c>'s fallback to TCP).</summary>
    public Task<(IReadOnlyList<DiscoveredTarget> Targets, TransportChoice Choice)> DiscoverAsync(IscsiTransportKind kind, IscsiSessionOptions options,
        CancellationToken cancellationToken = default) =>
        RunAsync(kind, options.Portals[0], "discovery", "",
            (transport, token) => SendTargetsDiscovery.DiscoverAsync(transport, options, _loggerFactory, token), cancellationToken, sessionEnds: true);

    /// <summary>
    /// Runs <paramref name="exchange"/> over the chosen transport; with <c>auto</c>, again over TCP when the iSER
    /// attempt shows that this target does not do iSER here. <paramref name="iserAccepted"/> is added to the reason
    /// when iSER worked. An iSER transport whose exchange failed, or whose session is over when the exchange returns
    /// (<paramref name="sessionEnds"/>: discovery), is disposed here (a session's own protection domain and pools with
    /// it); a logged-in session's is disposed by whoever ends that session.
    /// </summary>
    private async Task<(T Result, TransportChoice Choice)> RunAsync<T>(IscsiTransportKind kind, IscsiPortal portal, string what,
        string iserAccepted, Func<IIscsiTransport, CancellationToken, Task<T>> exchange, CancellationToken cancellationToken, bool sessionEnds)
    {
        var choice = await ChooseAsync(kind, portal, cancellationToken).ConfigureAwait(false);
        if (kind != IscsiTransportKind.Auto || choice.Iser is not { } iser)
        {
            LogChoice(what, choice.Reason);
            try
            {
                return (await exchange(choice.Transport, cancellationToken).ConfigureAwait(false), choice);
            }
            catch
            {
                choice.Iser?.Dispose();
                throw;
            }
            finally
            {
                if (sessionEnds) choice.Iser?.Dispose();
            }
        }
        try
        {
            var result = await exchange(iser, cancellationToken).ConfigureAwait(false);
            choice = choice with { Reason = choice.Reason + iserAccepted };
            LogChoice(what, choice.Reason);
            if (sessionEnds) iser.Dispose();
            return (result, choice);
        }
        catch (Exception e) when (FallsBackToTcp(iser, e, out var why) && !cancellationToken.IsCancellationRequested)
        {
            iser.Dispose();
            var fallback = new TransportChoice(CreateTcp(), $"transport auto: TCP ({why})");
            LogChoice(what, fallback.Reason);
            return (await exchange(fallback.Transport, cancellationToken).ConfigureAwait(false), fallback);
        }
        catch
        {
            iser.Dispose();
            throw;
        }
    }

    /// <summary>Whether an iSER login failure means "this target does not do iSER here" (so TCP is worth a try).</summary>
    internal static bool FallsBackToTcp(IserTransport iser, Exception e, out string why)
    {
        if (e is LoginParameterException && iser.LastConnection?.IserKeys.TargetRefusedRdma == true)
        {
            why = $"the target refused iSER: {e.Message}";
            return true;
        }
        if (e is IscsiTransportException)
        {
            why = $"the iSER connection failed: {e.Message}";
            return true;
        }
        why = "";
        return false;
    }

    private async Task<RdmaRouteCheck> CheckRouteAsync(IscsiPortal portal, CancellationToken cancellationToken)
    {
        IPAddress address;
        try { address = (await PortalAddresses.ResolveAsync(portal, cancellationToken).ConfigureAwait(false))[0]; }
        catch (IscsiTransportException e) { return new RdmaRouteCheck(false, null, e.Message); }
        return await RdmaReachability.CheckAsync(new IPEndPoint(address, portal.Port), RouteCheckTimeout, null, cancellationToken).ConfigureAwait(false);
    }

    private void LogChoice(string what, string reason) => SelectionLog.Chose(_logger, what, reason);
}
