using IserBlockd.TestSupport.Tgtd;

namespace IserBlockd.Integration.Tests;

/// <summary>A tgtd with one target and LUNs for a test; IQNs unique per test run.</summary>
internal sealed class TestTarget : IAsyncDisposable
{
    public const string InitiatorName = "iqn.2024-01.org.iserblockd:integration-tests";

    private TestTarget(TgtdServer server, TgtdTarget target)
    {
        Server = server;
        Target = target;
    }

    public TgtdServer Server { get; }
    public TgtdTarget Target { get; }
    public string Iqn => Target.Name;
    public string Portal => Server.Portal;

    public static Task<TestTarget> StartAsync(params (int Lun, long Size, int BlockSize)[] luns) => StartAsync(thin: false, luns);

    /// <param name="thin">LUNs with thin_provisioning=1: UNMAP and WRITE SAME punch holes in the backing file,
    /// GET LBA STATUS reports them.</param>
    public static async Task<TestTarget> StartAsync(bool thin, params (int Lun, long Size, int BlockSize)[] luns)
    {
        var server = await TgtdServer.StartAsync();
        try
        {
            var target = await server.CreateTargetAsync($"iqn.2024-01.org.iserblockd.test:{Guid.NewGuid():N}"[..52]);
            foreach (var (lun, size, blockSize) in luns)
                await target.AddLunAsync(lun, size, blockSize, thinProvisioning: thin);
            await target.BindAsync();
            return new TestTarget(server, target);
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>The sessions tgtd has for this target (tgtadm --mode target --op show).</summary>
    public Task<IReadOnlyList<TgtdSession>> SessionsAsync() => Server.ListSessionsAsync(Target.Tid);

    public string BackingFile(int lun) => Server.Directory.File($"tid{Target.Tid}-lun{lun}.img");

    public ValueTask DisposeAsync() => Server.DisposeAsync();
}
