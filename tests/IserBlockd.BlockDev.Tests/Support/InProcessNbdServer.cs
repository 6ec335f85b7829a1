using IserBlockd.BlockDev.Nbd;
using IserBlockd.TestSupport;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace IserBlockd.BlockDev.Tests.Support;

/// <summary>Our NBD server in the test process on a private Unix socket, for raw-socket and real clients.</summary>
internal sealed class InProcessNbdServer : IAsyncDisposable
{
    private readonly TempDirectory _directory = new("nbd-server-test");

    public InProcessNbdServer(ITestOutputHelper output, NbdServerOptions? options = null, params NbdExport[] exports)
    {
        Logs = new TestLoggerFactory(output);
        Server = new NbdServer(options, Logs);
        foreach (var export in exports) Server.AddExport(export);
        SocketPath = _directory.File("nbd.sock");
        Listener = Server.ListenUnix(SocketPath);
    }

    public NbdServer Server { get; }
    public NbdListener Listener { get; }
    public string SocketPath { get; }
    public TestLoggerFactory Logs { get; }
    public string Directory => _directory.Path;

    /// <summary>The NBD URI of an export, as libnbd and qemu write it.</summary>
    public string Uri(string export = "") => $"nbd+unix:///{export}?socket={SocketPath}";

    public RawNbdClient Connect(string export = "", bool structuredReplies = false, bool allocationContext = false) =>
        RawNbdClient.Open(SocketPath, export, structuredReplies, allocationContext);

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        _directory.Dispose();
    }
}
