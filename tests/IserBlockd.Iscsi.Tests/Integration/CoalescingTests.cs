using IserBlockd.Iscsi.Negotiation;
using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.Sessions;
using Xunit.Abstractions;

namespace IserBlockd.Iscsi.Tests.Integration;

/// <summary>
/// Commands issued together leave together (<see cref="IscsiSession.HoldSends"/>), and the responses of one network
/// receive are handled as one burst (<see cref="IReceiveBurstObserver"/>), against tgtd with CRC32C digests on; every
/// block read back.
/// </summary>
[Trait("Category", "RealPeer")]
public sealed class CoalescingTests(ITestOutputHelper output)
{
    private static readonly OperationalOptions Digests = new() { HeaderDigest = [DigestType.Crc32C], DataDigest = [DigestType.Crc32C] };

    private Task<TgtdTestBed> StartWithDigestsAsync() => TgtdTestBed.StartAsync(output, configure: async t =>
    {
        await t.SetParameterAsync("HeaderDigest", "CRC32C");
        await t.SetParameterAsync("DataDigest", "CRC32C");
    });

    [Fact]
    public async Task Held_commands_leave_in_one_send_when_released()
    {
        await using var bed = await StartWithDigestsAsync();
        await using var session = await bed.LoginAsync(bed.Options(Digests));
        Assert.Equal((DigestType.Crc32C, DigestType.Crc32C), (session.Parameters.HeaderDigest, session.Parameters.DataDigest));
        var lun = await session.OpenLunAsync(1);
        const int commands = 16;
        const int size = 4096;
        var data = Enumerable.Range(0, commands).Select(_ => RandomBytes(size)).ToArray();
        var blocks = size / (int)lun.BlockSize;

        var sentBefore = bed.Transport.Sent(IscsiOpcode.ScsiCommand);
        session.HoldSends();
        var writes = Enumerable.Range(0, commands).Select(i => lun.WriteAsync((ulong)(i * blocks), data[i]).AsTask()).ToArray();
        Assert.Equal(sentBefore, bed.Transport.Sent(IscsiOpcode.ScsiCommand)); // held: nothing went out
        session.ReleaseSends();
        await Task.WhenAll(writes).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.True(bed.Transport.MaxCommandsPerFlush >= commands, $"at most {bed.Transport.MaxCommandsPerFlush} commands left in one send");

        var back = Enumerable.Range(0, commands).Select(_ => new byte[size]).ToArray();
        session.HoldSends();
        var reads = Enumerable.Range(0, commands).Select(i => lun.ReadAsync((ulong)(i * blocks), back[i]).AsTask()).ToArray();
        session.ReleaseSends();
        await Task.WhenAll(reads).WaitAsync(TimeSpan.FromSeconds(60));
        for (var i = 0; i < commands; i++) Assert.True(data[i].AsSpan().SequenceEqual(back[i]), $"block {i} read back different data");
    }

    [Fact]
    public async Task A_single_command_under_no_hold_leaves_at_once()
    {
        await using var bed = await TgtdTestBed.StartAsync(output);
        await using var session = await bed.LoginAsync();
        var lun = await session.OpenLunAsync(1);
        session.HoldSends();
        session.ReleaseSends();
        var data = RandomBytes(4096);
        await lun.WriteAsync(0, data).AsTask().WaitAsync(TimeSpan.FromSeconds(60));
        var back = new byte[4096];
        await lun.ReadAsync(0, back).AsTask().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(data, back);
    }

    [Fact]
    public async Task Responses_complete_inside_balanced_receive_bursts()
    {
        await using var bed = await StartWithDigestsAsync();
        var observer = new CountingObserver();
        await using var session = await bed.LoginAsync(bed.Options(Digests) with { ReceiveBursts = observer });
        var lun = await session.OpenLunAsync(1);
        const int commands = 64;
        const int size = 4096;
        var blocks = size / (int)lun.BlockSize;
        var data = Enumerable.Range(0, commands).Select(_ => RandomBytes(size)).ToArray();
        await Task.WhenAll(Enumerable.Range(0, commands).Select(i => lun.WriteAsync((ulong)(i * blocks), data[i]).AsTask())).WaitAsync(TimeSpan.FromSeconds(60));
        var back = Enumerable.Range(0, commands).Select(_ => new byte[size]).ToArray();
        var inBurst = 0;
        await Task.WhenAll(Enumerable.Range(0, commands).Select(async i =>
        {
            await lun.ReadAsync((ulong)(i * blocks), back[i]).ConfigureAwait(false); // continue where the completion runs
            if (observer.Open) Interlocked.Increment(ref inBurst);
        })).WaitAsync(TimeSpan.FromSeconds(60));
        for (var i = 0; i < commands; i++) Assert.True(data[i].AsSpan().SequenceEqual(back[i]), $"block {i} read back different data");
        output.WriteLine($"{observer.Started} bursts, {inBurst} of {commands} reads completed inside one");
        Assert.True(observer.Started > 0);
        Assert.True(inBurst > 0, "no read completed inside a receive burst");
        Assert.False(observer.Failed, "a burst began inside another or ended without beginning, or on another thread");
    }

    private static byte[] RandomBytes(int size)
    {
        var b = new byte[size];
        Random.Shared.NextBytes(b);
        return b;
    }

    /// <summary>Checks bursts pair up on one thread; <see cref="Open"/> is true on the thread whose burst is open.</summary>
    private sealed class CountingObserver : IReceiveBurstObserver
    {
        [ThreadStatic] private static bool t_open;
        public int Started;
        public volatile bool Failed;

        public bool Open => t_open;

        public void BurstStarted()
        {
            if (t_open) Failed = true;
            t_open = true;
            Interlocked.Increment(ref Started);
        }

        public void BurstEnded()
        {
            if (!t_open) Failed = true;
            t_open = false;
        }
    }
}
