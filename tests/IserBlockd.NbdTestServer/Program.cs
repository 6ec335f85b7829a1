using System.CommandLine;
using System.Net;
using IserBlockd.BlockDev;
using IserBlockd.BlockDev.Devices;
using IserBlockd.BlockDev.Nbd;
using IserBlockd.TestSupport;
using Microsoft.Extensions.Logging;

// nbd-test-server: serves in-memory and file-backed exports until SIGINT/SIGTERM.
//   nbd-test-server --unix /tmp/nbd.sock --memory ""=1G --memory scratch=64M --file disk=/var/tmp/disk.img
// Prints "READY unix=PATH tcp=ADDRESS:PORT" on stdout once it accepts connections.

// As the daemon does: socket completions run the NBD code on the runtime's epoll thread.
if (Environment.GetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS") == null)
    Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1");

var unix = new Option<string?>("--unix") { Description = "Listen on this Unix socket path." };
var tcp = new Option<string?>("--tcp") { Description = "Listen on TCP ADDRESS:PORT (port 0 picks one)." };
var memory = new Option<string[]>("--memory") { Description = "NAME=SIZE: a sparse in-memory export (SIZE with K, M, G, T).", AllowMultipleArgumentsPerToken = false };
var file = new Option<string[]>("--file") { Description = "NAME=PATH: an export backed by a file (created sparse if --file-size is given)." };
var fileSize = new Option<string?>("--file-size") { Description = "Create/extend --file exports to this size." };
var blockSize = new Option<int>("--block-size") { Description = "Logical (minimum) block size.", DefaultValueFactory = _ => 512 };
var maxTransfer = new Option<string>("--max-transfer") { Description = "Maximum block size (largest request).", DefaultValueFactory = _ => "32M" };
var readOnly = new Option<bool>("--read-only") { Description = "Serve every export read-only." };
var noMultiConn = new Option<bool>("--no-multi-conn") { Description = "Do not advertise NBD_FLAG_CAN_MULTI_CONN." };
var requireBlockSize = new Option<bool>("--require-block-size") { Description = "Refuse clients that do not negotiate block sizes." };
var logLevel = new Option<LogLevel>("--log-level") { Description = "Least severe log level written to stderr.", DefaultValueFactory = _ => LogLevel.Warning };

var root = new RootCommand("NBD server over in-memory and file devices (IserBlockd test host)")
{
    unix, tcp, memory, file, fileSize, blockSize, maxTransfer, readOnly, noMultiConn, requireBlockSize, logLevel,
};
root.SetAction(async (parse, cancellationToken) =>
{
    var memoryExports = parse.GetValue(memory) ?? [];
    var fileExports = parse.GetValue(file) ?? [];
    var unixPath = parse.GetValue(unix);
    var tcpEndPoint = parse.GetValue(tcp);
    if (memoryExports.Length + fileExports.Length == 0)
    {
        Console.Error.WriteLine("nbd-test-server: give at least one --memory or --file export");
        return 2;
    }
    if (unixPath == null && tcpEndPoint == null)
    {
        Console.Error.WriteLine("nbd-test-server: give --unix PATH and/or --tcp ADDRESS:PORT");
        return 2;
    }

    var features = BlockDeviceFeatures.Flush | BlockDeviceFeatures.Fua | BlockDeviceFeatures.Trim | BlockDeviceFeatures.WriteZeroes;
    if (!parse.GetValue(noMultiConn)) features |= BlockDeviceFeatures.MultiConnection;
    var maximum = (int)Size.Parse(parse.GetValue(maxTransfer)!);
    var disposables = new List<IDisposable>();
    using var loggerFactory = TestLoggerFactory.ToStandardError(parse.GetValue(logLevel));
    await using var server = new NbdServer(new NbdServerOptions
    {
        RequireBlockSizeNegotiation = parse.GetValue(requireBlockSize),
    }, loggerFactory);
    foreach (var spec in memoryExports)
    {
        var (name, value) = Split(spec);
        var device = new MemoryBlockDevice(Size.Parse(value), new MemoryBlockDeviceOptions
        {
            LogicalBlockSize = parse.GetValue(blockSize),
            MaxTransferBytes = maximum,
            Features = features,
        });
        server.AddExport(new NbdExport(name, device, $"in-memory, {value}", parse.GetValue(readOnly)));
    }
    foreach (var spec in fileExports)
    {
        var (name, path) = Split(spec);
        var size = parse.GetValue(fileSize);
        var device = FileBlockDevice.Open(path, new FileBlockDeviceOptions
        {
            Size = size == null ? null : Size.Parse(size),
            LogicalBlockSize = parse.GetValue(blockSize),
            MaxTransferBytes = maximum,
            ReadOnly = parse.GetValue(readOnly),
        });
        disposables.Add(device);
        server.AddExport(new NbdExport(name, device, $"file {path}", parse.GetValue(readOnly)));
    }

    var ready = "READY";
    if (unixPath != null) ready += " unix=" + server.ListenUnix(unixPath).EndPoint;
    if (tcpEndPoint != null) ready += " tcp=" + server.ListenTcp(IPEndPoint.Parse(tcpEndPoint)).EndPoint;
    Console.WriteLine(ready);
    Console.Out.Flush();

    try
    {
        await Task.Delay(Timeout.Infinite, cancellationToken);
    }
    catch (OperationCanceledException)
    {
    }
    await server.DisposeAsync();
    foreach (var d in disposables) d.Dispose();
    return 0;
});
return await root.Parse(args).InvokeAsync();

static (string Name, string Value) Split(string spec)
{
    var at = spec.IndexOf('=');
    if (at < 0) throw new ArgumentException($"'{spec}' is not NAME=VALUE (use =VALUE for the default export).");
    return (spec[..at], spec[(at + 1)..]);
}

internal static class Size
{
    public static long Parse(string text)
    {
        text = text.Trim();
        var multiplier = char.ToUpperInvariant(text[^1]) switch
        {
            'K' => 1L << 10,
            'M' => 1L << 20,
            'G' => 1L << 30,
            'T' => 1L << 40,
            _ => 1L,
        };
        return long.Parse(multiplier == 1 ? text : text[..^1]) * multiplier;
    }
}
