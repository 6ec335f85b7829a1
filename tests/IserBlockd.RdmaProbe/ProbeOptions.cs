using System.Globalization;
using System.Net;

namespace IserBlockd.RdmaProbe;

internal sealed class ProbeOptions
{
    public string Command { get; private set; } = "";
    public IPAddress Address { get; private set; } = IPAddress.Any;
    public int Port { get; private set; } = 7174; // rping's default
    public IReadOnlyList<int> Sizes { get; private set; } = [64];
    public int Count { get; private set; } = 10;
    public int MinimumPings { get; private set; }
    public bool SendIserPrivateData { get; private set; } = true;
    public bool ExpectIserPrivateData { get; private set; }
    public bool Verify { get; private set; }
    public bool CheckKernelResources { get; private set; }
    public bool WriteBandwidth { get; private set; }
    public int Depth { get; private set; } = 16;

    public const string Usage = """
        usage: rdmaprobe devices
               rdmaprobe reach   --address ADDR [--port N]
               rdmaprobe server  --address ADDR [--port N] [--size N[,N...]] [--verify] [--min-pings N]
                                 [--expect-iser-private-data] [--check-kernel-resources]
               rdmaprobe client  --address ADDR [--port N] [--size N[,N...]] [--count N] [--no-private-data]
                                 [--check-kernel-resources]
               rdmaprobe windows --address ADDR [--port N]     memory window scope: per connection, until invalidated
               rdmaprobe sessions --address ADDR [--port N]    without windows: a protection domain per session
               rdmaprobe server|client --write-bandwidth --address ADDR [--port N] [--size N] [--count N] [--depth N]
        server/client speak rping's protocol (librdmacm examples): either side works with rping -s / rping -c.
        """;

    public static ProbeOptions Parse(string[] args)
    {
        if (args.Length == 0) throw new ArgumentException(Usage);
        var o = new ProbeOptions { Command = args[0] };
        if (o.Command is not ("devices" or "reach" or "server" or "client" or "windows" or "sessions")) throw new ArgumentException($"unknown command '{args[0]}'\n{Usage}");
        for (var i = 1; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--address": o.Address = IPAddress.Parse(Value()); break;
                case "--port": o.Port = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                case "--size": o.Sizes = Value().Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray(); break;
                case "--count": o.Count = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                case "--min-pings": o.MinimumPings = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                case "--no-private-data": o.SendIserPrivateData = false; break;
                case "--expect-iser-private-data": o.ExpectIserPrivateData = true; break;
                case "--verify": o.Verify = true; break;
                case "--check-kernel-resources": o.CheckKernelResources = true; break;
                case "--write-bandwidth": o.WriteBandwidth = true; break;
                case "--depth": o.Depth = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                default: throw new ArgumentException($"unknown option '{args[i]}'\n{Usage}");
            }
        }
        if (o.Sizes.Any(s => s < 32 || s > 4 * 1024 * 1024)) throw new ArgumentException("--size values must be 32 bytes to 4 MiB");
        return o;
    }
}
