using System.Net;

namespace IserBlockd.Rdma;

/// <summary>The answer to "can RDMA reach this portal?" and the reason either way.</summary>
/// <param name="DeviceName">The local RDMA device the route goes through, when reachable.</param>
public sealed record RdmaRouteCheck(bool IsReachable, string? DeviceName, string Reason);

/// <summary>Checks whether an RDMA device routes to a portal, without connecting (for <c>--transport auto</c>).</summary>
public static class RdmaReachability
{
    /// <summary>
    /// Resolves the portal's address and route through RDMA-CM. Never throws for a missing device or route:
    /// the result says why RDMA cannot be used.
    /// </summary>
    public static async Task<RdmaRouteCheck> CheckAsync(IPEndPoint portal, TimeSpan timeout, RdmaEventLoop? loop = null,
        CancellationToken cancellationToken = default)
    {
        var availability = RdmaDevices.Probe();
        if (!availability.IsAvailable) return new RdmaRouteCheck(false, null, availability.Reason);
        try
        {
            using var channel = RdmaEventChannel.Create(loop);
            using var id = channel.CreateId();
            await id.ResolveAddressAsync(portal, null, timeout, cancellationToken).ConfigureAwait(false);
            await id.ResolveRouteAsync(timeout, cancellationToken).ConfigureAwait(false);
            var device = id.Device?.DeviceName;
            return new RdmaRouteCheck(true, device, $"RDMA device {device} routes to {portal}");
        }
        catch (RdmaException e)
        {
            return new RdmaRouteCheck(false, null, $"no RDMA route to {portal}: {e.Message}");
        }
    }
}
