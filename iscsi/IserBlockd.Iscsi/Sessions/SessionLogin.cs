using IserBlockd.Iscsi.Login;
using IserBlockd.Iscsi.Security;
using IserBlockd.Iscsi.ConnectionPort;
using Microsoft.Extensions.Logging;

namespace IserBlockd.Iscsi.Sessions;

/// <summary>
/// One login of a session: tries the portals in order (a permanent redirection's portal first), follows
/// redirections, and returns the connection in full feature phase with the login's outcome.
/// </summary>
internal sealed class SessionLogin(IIscsiTransport transport, IscsiSessionOptions options, ILogger logger)
{
    private IscsiPortal? _preferredPortal;
    /// <summary>The CHAP_A offer: the configured list, less SHA-256 once a target showed it numbers SHA-1 as 7.</summary>
    private IReadOnlyList<ChapAlgorithm> _chapAlgorithms = options.ChapAlgorithms;

    private IEnumerable<IscsiPortal> PortalOrder()
    {
        if (_preferredPortal != null) yield return _preferredPortal;
        foreach (var p in options.Portals)
            if (p != _preferredPortal) yield return p;
    }

    public async Task<(IIscsiConnection Connection, IscsiPortal Portal, LoginOutcome Outcome)> RunAsync(CancellationToken cancellationToken)
    {
        Exception? last = null;
        foreach (var start in PortalOrder())
        {
            var portal = start;
            var retryWithoutSha256 = false;
            for (var redirects = 0; ; redirects++)
            {
                IIscsiConnection? connection = null;
                var done = false;
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(options.LoginTimeout);
                var settings = options.LoginAt(portal, _chapAlgorithms);
                var context = settings.Context;
                try
                {
                    connection = await transport.ConnectAsync(portal, timeout.Token).ConfigureAwait(false);
                    var outcome = await new LoginExchange(connection, settings, logger).RunAsync(timeout.Token).ConfigureAwait(false);
                    if (outcome.RedirectTo is { } next)
                    {
                        await connection.DisposeAsync().ConfigureAwait(false);
                        connection = null;
                        if (redirects >= options.MaxRedirects)
                            throw new TargetRedirectException($"{context} failed: more than {options.MaxRedirects} redirections");
                        if (outcome.RedirectIsPermanent) _preferredPortal = next with { PortalGroupTag = null };
                        portal = next;
                        continue;
                    }
                    var window = (int)Math.Max(1, (long)(int)(outcome.MaxCmdSN - outcome.ExpCmdSN) + 1);
                    await connection.StartFullFeaturePhaseAsync(new FullFeaturePhaseContext(outcome.Parameters!, window), timeout.Token).ConfigureAwait(false);
                    done = true;
                    return (connection, portal, outcome);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    last = new IscsiLoginException($"{context} timed out after {options.LoginTimeout.TotalSeconds:0.#} s");
                }
                catch (IscsiTransportException e)
                {
                    last = new IscsiTransportException($"{context} failed: {e.Message}", e);
                }
                catch (IscsiProtocolException e)
                {
                    last = new IscsiLoginException($"{context} failed: {e.Message}", 0, 0, e);
                }
                catch (ChapAlgorithmMismatchException e) when (_chapAlgorithms.Count > 1 && _chapAlgorithms.Contains(ChapAlgorithm.Sha256))
                {
                    // tgt's CHAP_A=7 is SHA-1: offer the rest of the list, once, and keep that offer for this session.
                    _chapAlgorithms = [.. _chapAlgorithms.Where(a => a != ChapAlgorithm.Sha256)];
                    LoginLog.RetryingWithChapOffer(logger, e.Message, Chap.FormatAlgorithms(_chapAlgorithms));
                    retryWithoutSha256 = true;
                }
                finally
                {
                    if (connection != null && !done) await connection.DisposeAsync().ConfigureAwait(false);
                }
                if (retryWithoutSha256)
                {
                    retryWithoutSha256 = false;
                    redirects--;
                    continue;
                }
                LoginLog.LoginFailed(logger, last!.Message);
                break;
            }
        }
        throw last ?? new IscsiLoginException("no portal to log in to");
    }
}
