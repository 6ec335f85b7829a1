using IserBlockd.BlockDev.Devices;
using IserBlockd.BlockDev.Nbd;
using IserBlockd.BlockDev.Nbd.Protocol;
using IserBlockd.BlockDev.Tests.Support;
using Xunit.Abstractions;

namespace IserBlockd.BlockDev.Tests.Server;

/// <summary>
/// FLUSH and FUA against a device that models a volatile write cache (what is not flushed is lost in
/// a simulated power failure): an answered FLUSH covers every write answered before it, an answered
/// FUA write is durable (doc/proto.md, "Ordering of messages and writes").
/// </summary>
public class DurabilityTests(ITestOutputHelper output)
{
    private const long Size = 16 << 20;

    private static MemoryBlockDevice CachedDevice(BlockDeviceFeatures? features = null) => new(Size, new MemoryBlockDeviceOptions
    {
        TrackDurability = true,
        Features = features ?? new MemoryBlockDeviceOptions().Features,
    });

    private static byte[] Pattern(byte value, int length = 4096) => Enumerable.Repeat(value, length).ToArray();

    private static byte[] ReadBack(MemoryBlockDevice device, long offset, int length = 4096)
    {
        var data = new byte[length];
        device.Read(offset, data);
        return data;
    }

    [Fact]
    public async Task The_model_loses_unflushed_writes()
    {
        var device = CachedDevice();
        await using var server = new InProcessNbdServer(output, null, new NbdExport("", device));
        using var client = server.Connect();
        Assert.Equal(0u, client.WriteSync(0, Pattern(1)).Error);
        device.SimulatePowerLoss();
        Assert.Equal(Pattern(0), ReadBack(device, 0));
    }

    [Fact]
    public async Task An_answered_flush_makes_every_answered_write_durable()
    {
        var device = CachedDevice();
        await using var server = new InProcessNbdServer(output, null, new NbdExport("", device));
        using var client = server.Connect();
        for (var i = 0; i < 32; i++) Assert.Equal(0u, client.WriteSync((ulong)i * 65536, Pattern((byte)(i + 1))).Error);
        Assert.Equal(0u, client.Request(c => c.Send(NbdCommand.Flush, 0, 0)).Error);
        Assert.Equal(0u, client.WriteSync(40 * 65536, Pattern(0x77)).Error); // after the flush: not covered

        device.SimulatePowerLoss();
        for (var i = 0; i < 32; i++) Assert.Equal(Pattern((byte)(i + 1)), ReadBack(device, i * 65536L));
        Assert.Equal(Pattern(0), ReadBack(device, 40 * 65536L));
        Assert.Equal(1, device.Statistics.Flushes);
    }

    [Fact]
    public async Task A_flush_on_one_connection_covers_writes_answered_on_another()
    {
        var device = CachedDevice();
        await using var server = new InProcessNbdServer(output, null, new NbdExport("", device));
        using var writer = server.Connect();
        using var flusher = server.Connect();
        Assert.True(writer.Flags.HasFlag(NbdTransmissionFlags.CanMultiConn));
        Assert.Equal(0u, writer.WriteSync(1 << 20, Pattern(9)).Error);
        Assert.Equal(0u, flusher.Request(c => c.Send(NbdCommand.Flush, 0, 0)).Error);
        device.SimulatePowerLoss();
        Assert.Equal(Pattern(9), ReadBack(device, 1 << 20));
    }

    [Fact]
    public async Task A_fua_write_is_durable_when_answered()
    {
        var device = CachedDevice();
        await using var server = new InProcessNbdServer(output, null, new NbdExport("", device));
        using var client = server.Connect();
        Assert.Equal(0u, client.WriteSync(8192, Pattern(5), NbdCommandFlags.Fua).Error);
        device.SimulatePowerLoss();
        Assert.Equal(Pattern(5), ReadBack(device, 8192));
        Assert.Equal(0, device.Statistics.Flushes);
    }

    [Fact]
    public async Task A_fua_write_on_a_device_without_fua_is_durable_through_a_flush()
    {
        var device = CachedDevice(BlockDeviceFeatures.Flush);
        await using var server = new InProcessNbdServer(output, null, new NbdExport("", device));
        using var client = server.Connect();
        Assert.Equal(0u, client.WriteSync(8192, Pattern(6), NbdCommandFlags.Fua).Error);
        device.SimulatePowerLoss();
        Assert.Equal(Pattern(6), ReadBack(device, 8192));
        Assert.Equal(1, device.Statistics.Flushes);
    }

    [Fact]
    public async Task Fua_trim_and_write_zeroes_are_durable_when_answered()
    {
        var device = CachedDevice();
        await using var server = new InProcessNbdServer(output, null, new NbdExport("", device));
        using var client = server.Connect();
        Assert.Equal(0u, client.WriteSync(0, Pattern(3, 1 << 20), NbdCommandFlags.Fua).Error);
        Assert.Equal(0u, client.Request(c => c.Send(NbdCommand.Trim, 0, 65536, NbdCommandFlags.Fua)).Error);
        Assert.Equal(0u, client.Request(c => c.Send(NbdCommand.WriteZeroes, 65536, 65536, NbdCommandFlags.Fua)).Error);
        device.SimulatePowerLoss();
        Assert.Equal(new byte[131072], ReadBack(device, 0, 131072));
        Assert.Equal(Pattern(3, 65536), ReadBack(device, 131072, 65536));
    }

    [Fact]
    public async Task A_flush_waits_for_nothing_still_in_flight_but_covers_what_was_answered()
    {
        // The write at 1 MiB is held at the device while a FLUSH arrives: the protocol lets the flush
        // be answered without it. The write answered earlier must be covered, and the flush must have
        // reached the device only after that write completed there.
        var hold = new TaskCompletionSource();
        var inner = CachedDevice();
        var device = new ControlledDevice(inner) { Gate = (op, offset) => op == DeviceOperation.Write && offset == 1 << 20 ? hold.Task : null };
        await using var server = new InProcessNbdServer(output, null, new NbdExport("", device));
        using var client = server.Connect();
        Assert.Equal(0u, client.WriteSync(0, Pattern(1)).Error);
        var held = client.Write(1 << 20, Pattern(2));
        var flush = client.Send(NbdCommand.Flush, 0, 0);
        var first = client.ReadReply();
        Assert.Equal((flush, 0u), (first.Handle, first.Error));

        var events = device.Events;
        var answeredWriteDone = events.ToList().FindIndex(e => e is { Operation: DeviceOperation.Write, Offset: 0, Completed: true });
        var flushStarted = events.ToList().FindIndex(e => e is { Operation: DeviceOperation.Flush, Completed: false });
        Assert.True(answeredWriteDone >= 0 && answeredWriteDone < flushStarted);

        hold.SetResult();
        Assert.Equal((held, 0u), (client.ReadReply() is var r ? (r.Handle, r.Error) : default));
        inner.SimulatePowerLoss();
        Assert.Equal(Pattern(1), ReadBack(inner, 0));
    }
}
