using IserBlockd.Iscsi;
using IserBlockd.Iscsi.Sessions;
using IserBlockd.Iscsi.ConnectionPort;
using IserBlockd.Transport.Tcp;

namespace IserBlockd.Fuzz.Targets;

/// <summary>
/// A whole session against a target that says the fuzz input: login, then either SendTargets discovery (first
/// byte even) or opening LUN 0 (INQUIRY, READ CAPACITY, VPD pages) and one READ, then logout.
/// </summary>
public sealed class IscsiSessionTarget : IFuzzTarget
{
    public string Name => "iscsi-session";

    public IReadOnlyList<string> Instrumented => ["IserBlockd.Iscsi.dll", "IserBlockd.Transport.dll"];

    public void Run(ReadOnlySpan<byte> input)
    {
        if (input.Length < 1) return;
        var discovery = (input[0] & 1) == 0;
        var transport = new OneConnectionTransport(input[1..].ToArray());
        var options = new IscsiSessionOptions
        {
            Portals = [IscsiPortal.Parse("127.0.0.1:3260")],
            InitiatorName = "iqn.2026-11.io.iserblockd.fuzz:initiator",
            TargetName = discovery ? null : "iqn.2026-11.io.iserblockd.fuzz:target",
            SessionType = discovery ? IscsiSessionType.Discovery : IscsiSessionType.Normal,
            Isid = Isid.Parse("800000000001"),
            LoginTimeout = TimeSpan.FromSeconds(5),
        };
        try
        {
            RunAsync(transport, options, discovery).GetAwaiter().GetResult();
        }
        catch (IscsiException)
        {
        }
    }

    private static async Task RunAsync(IIscsiTransport transport, IscsiSessionOptions options, bool discovery)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await using var session = await IscsiSession.LoginAsync(transport, options, null, deadline.Token).ConfigureAwait(false);
        if (discovery)
        {
            foreach (var target in await session.SendTargetsAsync("All", deadline.Token).ConfigureAwait(false))
                _ = target.ToString();
        }
        else
        {
            var lun = await session.OpenLunAsync(0, deadline.Token).ConfigureAwait(false);
            if (lun.BlockSize is > 0 and <= 65536)
                await lun.ReadAsync(0, new byte[lun.BlockSize], deadline.Token).ConfigureAwait(false);
        }
        await session.LogoutAsync(deadline.Token).ConfigureAwait(false);
    }

    public IEnumerable<(string Name, byte[] Data)> Seeds()
    {
        var login = IscsiSeeds.Concat(IscsiSeeds.Hex(IscsiSeeds.LoginResponse1), IscsiSeeds.Hex(IscsiSeeds.LoginResponse2));
        yield return ("discovery", [0, .. login,
            .. IscsiSeeds.TextResponse(3, ("TargetName", "iqn.2026-11.io.iserblockd.fuzz:target"), ("TargetAddress", "127.0.0.1:3260,1"), ("TargetAddress", "[::1]:3260,1")),
            .. IscsiSeeds.Hex(IscsiSeeds.LogoutResponse)]);
        yield return ("normal", [1, .. login, .. IscsiSeeds.Hex(IscsiSeeds.UnitAttention), .. IscsiSeeds.Hex(IscsiSeeds.InquiryDataIn),
            .. IscsiSeeds.Hex(IscsiSeeds.ReadCapacityDataIn), .. IscsiSeeds.Hex(IscsiSeeds.DeviceIdentificationDataIn), .. IscsiSeeds.Hex(IscsiSeeds.LogoutResponse)]);
    }

    /// <summary>The first connection replays the input; a reconnection finds nobody listening.</summary>
    private sealed class OneConnectionTransport(byte[] input) : IIscsiTransport
    {
        private int _connections;

        public string Name => "fuzz";

        public ValueTask<IIscsiConnection> ConnectAsync(IscsiPortal portal, CancellationToken cancellationToken) =>
            Interlocked.Increment(ref _connections) == 1
                ? ValueTask.FromResult<IIscsiConnection>(new TagFixingConnection(new TcpIscsiConnection(new ReplayStream(input), null, null)))
                : throw new IscsiTransportException("connection refused");
    }
}
