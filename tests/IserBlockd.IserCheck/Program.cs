using System.Buffers;
using System.Diagnostics;
using System.Security.Cryptography;
using IserBlockd.IserCheck;
using IserBlockd.Iscsi;
using IserBlockd.Iscsi.Discovery;
using IserBlockd.Iscsi.Scsi;
using IserBlockd.Iscsi.Sessions;
using IserBlockd.Rdma;
using IserBlockd.Transport.Iser;
using IserBlockd.Transport.Selection;
using Microsoft.Extensions.Logging;

// iser-check: drives the iSER transport against a real target and checks every byte.
//   iser-check discover PORTAL [--transport K]
//   iser-check io PORTAL IQN [--lun N] [--transport K]          verified I/O at 4 KiB, 128 KiB, 1 MiB (registered and plain buffers)
//   iser-check put PORTAL IQN --lun N --offset B --file F       write a file to the LUN
//   iser-check get PORTAL IQN --lun N --offset B --length L --file F   read from the LUN into a file
// Common: --initiator-name IQN (default iqn.2024-01.test.iserblockd:iser-check), --memory-windows on|off (default on),
// --verbose. Exit 0 only when all checks pass.
var args2 = new Args(args);
var verbose = args2.Flag("--verbose");
using var loggerFactory = new IserCheckLoggerFactory(args2.Flag("--trace") ? LogLevel.Trace : verbose ? LogLevel.Debug : LogLevel.Information);
var log = loggerFactory.CreateLogger("iser-check");
var kindText = args2.Option("--transport") ?? "iser";
if (!IscsiTransportKindNames.TryParse(kindText, out var kind)) return Fail($"--transport {kindText}: expected tcp, iser or auto");
var initiator = args2.Option("--initiator-name") ?? "iqn.2024-01.test.iserblockd:iser-check";
var devices = new IserDeviceRegistry(new IserDeviceOptions { MemoryWindows = args2.Option("--memory-windows") != "off" });
var chooser = new TransportChooser(devices: devices, loggerFactory: loggerFactory);
var command = args2.Positional(0);
// Generous: tgtd registers its whole RDMA pool (1 GiB) when the first connection arrives on a device, which takes
// seconds under emulation.
var loginTimeout = TimeSpan.FromSeconds(int.Parse(args2.Option("--login-timeout") ?? "90"));
using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(int.Parse(args2.Option("--timeout") ?? "180")));
var ct = timeout.Token;
try
{
    var rc = command switch
    {
        "discover" => await DiscoverAsync(),
        "io" => await WithSessionAsync(IoAsync),
        "put" => await WithSessionAsync(PutAsync),
        "get" => await WithSessionAsync(GetAsync),
        _ => Fail("usage: iser-check discover|io|put|get PORTAL [IQN] [options]"),
    };
    devices.Dispose();
    if (rc == 0)
    {
        var live = RdmaDiagnostics.LiveNativeObjects;
        if (live != 0) return Fail($"{live} rdma-core objects are still alive after logout and teardown (leak)");
        Console.WriteLine("ok: no rdma-core object left (RdmaDiagnostics.LiveNativeObjects = 0)");
    }
    return rc;
}
catch (Exception e) when (e is IscsiException or RdmaException or IOException or OperationCanceledException)
{
    return Fail($"{e.GetType().Name}: {e.Message}");
}

async Task<int> DiscoverAsync()
{
    var portal = IscsiPortal.Parse(args2.Positional(1));
    var (targets, choice) = await chooser.DiscoverAsync(kind, new IscsiSessionOptions { Portals = [portal], InitiatorName = initiator, LoginTimeout = loginTimeout }, ct);
    Console.WriteLine($"transport: {choice.Name} ({choice.Reason})");
    foreach (var t in targets)
        foreach (var p in t.Portals)
            Console.WriteLine($"{p} {t.Name}");
    return targets.Count > 0 ? 0 : Fail("SendTargets returned no target");
}

async Task<int> WithSessionAsync(Func<IscsiSession, ScsiLun, TransportChoice, Task<int>> body)
{
    var options = new IscsiSessionOptions
    {
        Portals = [IscsiPortal.Parse(args2.Positional(1))],
        TargetName = args2.Positional(2),
        InitiatorName = initiator,
        LoginTimeout = loginTimeout,
    };
    var (session, choice) = await chooser.LoginAsync(kind, options, ct);
    Console.WriteLine($"transport: {choice.Name} ({choice.Reason})");
    int rc;
    await using (session)
    {
        Console.WriteLine($"logged in: TSIH {session.Tsih}, {session.Parameters}");
        var lun = await session.OpenLunAsync(ulong.Parse(args2.Option("--lun") ?? "1"), ct);
        Console.WriteLine($"inquiry: vendor={lun.Inquiry.Vendor} product={lun.Inquiry.Product} revision={lun.Inquiry.Revision}");
        Console.WriteLine($"capacity: {lun.SizeBytes} bytes, block size {lun.BlockSize}, max transfer {lun.MaxTransferBytes}");
        rc = await body(session, lun, choice);
        if (choice.Iser?.LastConnection is { } c)
            Console.WriteLine($"iser: registered={c.RegisteredTransfers} bounce={c.BounceTransfers} pinned={c.PinnedTransfers} sendStalls={c.SendStalls} " +
                $"pdusSent={c.PdusSent} pdusReceived={c.PdusReceived} device={choice.Iser.Device?.Name} " +
                $"windows={c.UsesWindows} binds={c.WindowBinds} remoteInvalidations={c.RemoteInvalidations} localInvalidations={c.LocalInvalidations}");
        await session.LogoutAsync(ct);
        Console.WriteLine("logged out");
    }
    choice.Iser?.Dispose(); // the session's own protection domain and pools, where it has them (no windows)
    return rc;
}

async Task<int> IoAsync(IscsiSession session, ScsiLun lun, TransportChoice choice)
{
    // Distinct regions per size and buffer kind, so that a misplaced write shows up as a mismatch elsewhere too.
    int[] sizes = [4096, 128 * 1024, 1024 * 1024];
    var offset = 0L;
    var failures = 0;
    foreach (var size in sizes)
    {
        foreach (var registered in choice.Iser != null ? new[] { true, false } : [false])
        {
            var kindName = registered ? "registered" : "plain";
            using var source = await RentAsync(choice, size, registered);
            using var readBack = await RentAsync(choice, size, registered);
            RandomNumberGenerator.Fill(source.Memory.Span);
            readBack.Memory.Span.Fill(0xa5);
            var sw = Stopwatch.StartNew();
            await lun.WriteAtAsync(offset, source.Memory, false, ct);
            await lun.ReadAtAsync(offset, readBack.Memory, ct);
            if (!source.Memory.Span.SequenceEqual(readBack.Memory.Span))
            {
                var first = source.Memory.Span.CommonPrefixLength(readBack.Memory.Span);
                Console.WriteLine($"FAIL: {size} bytes ({kindName} buffers) at offset {offset}: read back differs from byte {first} on");
                failures++;
            }
            else Console.WriteLine($"ok: {size} bytes ({kindName} buffers) written and read back at offset {offset} in {sw.Elapsed.TotalMilliseconds:0.0} ms");
            offset += Math.Max(size, 64 * 1024) * 2L;
        }
    }
    // Many commands in flight at once, every one verified: the queue depth and credits at work.
    var parallel = int.Parse(args2.Option("--parallel") ?? "64");
    var blocks = new Memory<byte>[parallel];
    var sources = new byte[parallel][];
    var owners = new IMemoryOwner<byte>[parallel];
    for (var i = 0; i < parallel; i++)
    {
        owners[i] = await RentAsync(choice, 64 * 1024, choice.Iser != null);
        blocks[i] = owners[i].Memory;
        sources[i] = RandomNumberGenerator.GetBytes(64 * 1024);
        sources[i].CopyTo(blocks[i]);
    }
    var baseOffset = offset;
    await Task.WhenAll(Enumerable.Range(0, parallel).Select(i => lun.WriteAtAsync(baseOffset + i * 65536L, blocks[i], false, ct).AsTask()));
    foreach (var b in blocks) b.Span.Clear();
    await Task.WhenAll(Enumerable.Range(0, parallel).Select(i => lun.ReadAtAsync(baseOffset + i * 65536L, blocks[i], ct).AsTask()));
    var bad = Enumerable.Range(0, parallel).Count(i => !blocks[i].Span.SequenceEqual(sources[i]));
    foreach (var o in owners) o.Dispose();
    if (bad > 0)
    {
        Console.WriteLine($"FAIL: {bad} of {parallel} concurrent 64 KiB blocks read back differently");
        failures++;
    }
    else Console.WriteLine($"ok: {parallel} concurrent 64 KiB writes then reads, all verified");
    await lun.SynchronizeCacheAsync(ct);
    return failures == 0 ? 0 : 1;
}

async Task<int> PutAsync(IscsiSession session, ScsiLun lun, TransportChoice choice)
{
    var data = await File.ReadAllBytesAsync(args2.Option("--file")!, ct);
    var offset = long.Parse(args2.Option("--offset") ?? "0");
    for (var done = 0; done < data.Length;)
    {
        var chunk = Math.Min(1024 * 1024, data.Length - done);
        using var buffer = await RentAsync(choice, chunk, choice.Iser != null);
        data.AsSpan(done, chunk).CopyTo(buffer.Memory.Span);
        await lun.WriteAtAsync(offset + done, buffer.Memory, false, ct);
        done += chunk;
    }
    await lun.SynchronizeCacheAsync(ct);
    Console.WriteLine($"ok: wrote {data.Length} bytes at offset {offset}");
    return 0;
}

async Task<int> GetAsync(IscsiSession session, ScsiLun lun, TransportChoice choice)
{
    var offset = long.Parse(args2.Option("--offset") ?? "0");
    var length = int.Parse(args2.Option("--length")!);
    await using var file = File.Create(args2.Option("--file")!);
    for (var done = 0; done < length;)
    {
        var chunk = Math.Min(1024 * 1024, length - done);
        using var buffer = await RentAsync(choice, chunk, choice.Iser != null);
        await lun.ReadAtAsync(offset + done, buffer.Memory, ct);
        await file.WriteAsync(buffer.Memory, ct);
        done += chunk;
    }
    Console.WriteLine($"ok: read {length} bytes at offset {offset}");
    return 0;
}

static async Task<IMemoryOwner<byte>> RentAsync(TransportChoice choice, int length, bool registered)
{
    if (registered && choice.Iser != null) return await choice.Iser.RentAsync(length, CancellationToken.None);
    return new ArrayOwner(new byte[length]);
}

static int Fail(string message)
{
    Console.Error.WriteLine($"iser-check: {message}");
    return 1;
}

internal sealed class ArrayOwner(byte[] array) : IMemoryOwner<byte>
{
    public Memory<byte> Memory => array;

    public void Dispose() { }
}

internal sealed class Args(string[] args)
{
    private static readonly string[] Flags = ["--verbose", "--trace"];

    public bool Flag(string name) => args.Contains(name);

    public string? Option(string name)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    public string Positional(int index)
    {
        var positional = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i].StartsWith("--", StringComparison.Ordinal))
            {
                if (!Flags.Contains(args[i])) i++;
                continue;
            }
            positional.Add(args[i]);
        }
        return index < positional.Count ? positional[index] : throw new ArgumentException($"missing argument {index + 1}");
    }
}
