using IserBlockd.BlockDev.Devices;
using IserBlockd.BlockDev.Nbd;
using IserBlockd.BlockDev.Nbd.Protocol;

namespace IserBlockd.Fuzz.Targets;

/// <summary>
/// An NBD client that says the fuzz input to our server: handshake (greeting flags, every option with its data),
/// then transmission (requests, WRITE payloads) against a 1 MiB memory export. The first byte picks the size of
/// the pieces the client's bytes arrive in.
/// </summary>
public sealed class NbdServerTarget : IFuzzTarget
{
    private static readonly FindingLogger Log = new();
    private static readonly NbdServer Server = CreateServer();

    public string Name => "nbd-server";

    public IReadOnlyList<string> Instrumented => ["IserBlockd.BlockDev.dll"];

    private static NbdServer CreateServer()
    {
        var server = new NbdServer(new NbdServerOptions { HandshakeTimeout = TimeSpan.FromSeconds(5), MaxOptionLength = 4096 + 64 }, Log);
        server.AddExport(new NbdExport("", new MemoryBlockDevice(1 << 20), "fuzz export"));
        server.AddExport(new NbdExport("ro", new MemoryBlockDevice(1 << 20, new MemoryBlockDeviceOptions { LogicalBlockSize = 4096 }), readOnly: true));
        return server;
    }

    public void Run(ReadOnlySpan<byte> input)
    {
        if (input.Length < 1) return;
        var transport = new MemoryNbdTransport(input[1..].ToArray(), chunk: 1 + input[0] * 16);
        var served = Server.ServeAsync(transport);
        if (!served.Wait(TimeSpan.FromSeconds(10))) throw new TimeoutException("the server did not finish a closed connection within 10 s");
        Log.ThrowIfFinding();
    }

    public IEnumerable<(string Name, byte[] Data)> Seeds()
    {
        yield return ("modern", [255, .. NbdSeeds.ModernSession()]);
        yield return ("modern-small-pieces", [0, .. NbdSeeds.ModernSession()]);
        yield return ("export-name", [255, .. NbdSeeds.ExportNameSession()]);
        yield return ("refusals", [255, .. NbdSeeds.Refusals()]);
        yield return ("read-only", [255, .. NbdSeeds.Concat(NbdSeeds.ClientFlags(3), NbdSeeds.Option(NbdOption.Go, NbdSeeds.InfoRequest("ro")),
            NbdSeeds.Request(NbdCommand.Write, 0, 4096), new byte[4096], NbdSeeds.Request(NbdCommand.Read, 0, 4096, handle: 2))]);
    }
}
