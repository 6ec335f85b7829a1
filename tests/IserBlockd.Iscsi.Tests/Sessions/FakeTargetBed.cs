using IserBlockd.Iscsi.Negotiation;
using IserBlockd.Iscsi.Sessions;
using IserBlockd.Iscsi.Tests.Fakes;
using Xunit.Abstractions;

namespace IserBlockd.Iscsi.Tests.Sessions;

/// <summary>A fake target on the in-memory transport, and sessions to it.</summary>
public sealed class FakeTargetBed
{
    public FakeTargetBed(ITestOutputHelper? output, Action<FakeTarget>? configure = null)
    {
        Target = new FakeTarget();
        configure?.Invoke(Target);
        Transport.Listen(Portal, Target);
        Logs = new TestLoggerFactory(output);
    }

    public static readonly IscsiPortal Portal = new("192.0.2.1", 3260);

    public FakeTarget Target { get; }
    public InMemoryTransport Transport { get; } = new();
    public TestLoggerFactory Logs { get; }

    public IscsiSessionOptions Options(OperationalOptions? operational = null) => new()
    {
        Portals = [Portal],
        TargetName = Target.Name,
        InitiatorName = "iqn.2026-11.io.iserblockd.test:unit",
        Operational = operational ?? new OperationalOptions(),
        LoginTimeout = TimeSpan.FromSeconds(10),
    };

    public Task<IscsiSession> LoginAsync(IscsiSessionOptions? options = null) => IscsiSession.LoginAsync(Transport, options ?? Options(), Logs);

    /// <summary>Waits until the target has received a PDU matching <paramref name="predicate"/>.</summary>
    public Task<RawPdu> WaitForAsync(Func<RawPdu, bool> predicate, TimeSpan? timeout = null) =>
        Wait.For(() => { lock (Target.Received) return Target.Received.FirstOrDefault(predicate); }, "the PDU the target should receive", timeout);

    public int CountReceived(Func<RawPdu, bool> predicate)
    {
        lock (Target.Received) return Target.Received.Count(predicate);
    }
}
