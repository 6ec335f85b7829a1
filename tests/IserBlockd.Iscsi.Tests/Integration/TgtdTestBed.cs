using IserBlockd.Iscsi.Negotiation;
using IserBlockd.Iscsi.Sessions;
using IserBlockd.TestSupport.Tgtd;
using IserBlockd.Transport.Tcp;
using IserBlockd.Iscsi.Tests.Fakes;
using Xunit.Abstractions;

namespace IserBlockd.Iscsi.Tests.Integration;

/// <summary>A tgtd with one target and LUN 1, and helpers to log in to it through a recording TCP transport.</summary>
public sealed class TgtdTestBed : IAsyncDisposable
{
    public const string InitiatorName = "iqn.2026-11.io.iserblockd.test:initiator";

    private TgtdTestBed(TgtdServer server, TgtdTarget target, ITestOutputHelper? output)
    {
        Server = server;
        Target = target;
        Logs = new TestLoggerFactory(output);
    }

    public TgtdServer Server { get; }
    public TgtdTarget Target { get; }
    public TestLoggerFactory Logs { get; }
    public RecordingTransport Transport { get; } = new(new TcpIscsiTransport());
    public string BackingFile { get; private set; } = "";

    public static async Task<TgtdTestBed> StartAsync(ITestOutputHelper? output, long size = 64 << 20, int blockSize = 512, bool thin = false,
        Func<TgtdTarget, Task>? configure = null, string targetName = "iqn.2026-11.io.iserblockd.test:disk", string bindAddress = "ALL")
    {
        var server = await TgtdServer.StartAsync();
        try
        {
            var target = await server.CreateTargetAsync(targetName);
            var bed = new TgtdTestBed(server, target, output);
            bed.BackingFile = await target.AddLunAsync(1, size, blockSize, thin);
            await target.BindAsync(bindAddress);
            if (configure != null) await configure(target);
            return bed;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    public IscsiSessionOptions Options(OperationalOptions? operational = null) => new()
    {
        Portals = [IscsiPortal.Parse(Server.Portal)],
        TargetName = Target.Name,
        InitiatorName = InitiatorName,
        Operational = operational ?? new OperationalOptions(),
    };

    public Task<IscsiSession> LoginAsync(IscsiSessionOptions? options = null)
        => IscsiSession.LoginAsync(Transport, options ?? Options(), Logs);

    public async ValueTask DisposeAsync() => await Server.DisposeAsync();
}
