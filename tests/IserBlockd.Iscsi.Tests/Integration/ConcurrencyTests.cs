using IserBlockd.Iscsi.Scsi;
using Xunit.Abstractions;

namespace IserBlockd.Iscsi.Tests.Integration;

/// <summary>Many commands in flight at once within tgtd's CmdSN window; every block verified.</summary>
[Trait("Category", "RealPeer")]
public sealed class ConcurrencyTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Hundreds_of_commands_in_flight()
    {
        await using var bed = await TgtdTestBed.StartAsync(output);
        await using var session = await bed.LoginAsync();
        var lun = await session.OpenLunAsync(1);
        const int commands = 256;
        const int size = 8192;
        var blocksPer = size / (int)lun.BlockSize;
        var data = new byte[commands][];
        for (var i = 0; i < commands; i++)
        {
            data[i] = new byte[size];
            Random.Shared.NextBytes(data[i]);
        }
        // Started together; the session keeps as many on the wire as the target's window allows.
        await Task.WhenAll(Enumerable.Range(0, commands).Select(i => lun.WriteAsync((ulong)(i * blocksPer), data[i]).AsTask()));
        var maxWrites = bed.Transport.MaxOutstandingCommands;
        var back = new byte[commands][];
        await Task.WhenAll(Enumerable.Range(0, commands).Select(i =>
        {
            back[i] = new byte[size];
            return lun.ReadAsync((ulong)(i * blocksPer), back[i]).AsTask();
        }));
        for (var i = 0; i < commands; i++) Assert.True(data[i].AsSpan().SequenceEqual(back[i]), $"command {i} read back different data");
        output.WriteLine($"max outstanding: {bed.Transport.MaxOutstandingCommands} (writes {maxWrites})");
        Assert.True(bed.Transport.MaxOutstandingCommands >= 64, $"at most {bed.Transport.MaxOutstandingCommands} commands were outstanding");
        Assert.Equal(0, session.OutstandingCommands);
    }
}
