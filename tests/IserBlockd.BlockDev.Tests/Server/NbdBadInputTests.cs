using IserBlockd.BlockDev.Devices;
using IserBlockd.BlockDev.Nbd;
using IserBlockd.BlockDev.Nbd.Protocol;
using IserBlockd.BlockDev.Tests.Support;
using Xunit.Abstractions;

namespace IserBlockd.BlockDev.Tests.Server;

/// <summary>
/// Requests a correct client never sends. Each gets the error doc/proto.md prescribes ("Error values",
/// "Block size constraints") or a hard disconnect of that client alone; a bystander client keeps
/// working throughout, and nothing half-received reaches the device.
/// </summary>
public sealed class NbdBadInputTests : IAsyncLifetime
{
    private const long Size = 16 << 20;
    private const uint MaxBlock = 1 << 20;
    private readonly ITestOutputHelper _output;
    private readonly MemoryBlockDevice _device;
    private readonly InProcessNbdServer _server;
    private readonly RawNbdClient _bystander;
    private readonly byte[] _bystanderData = Enumerable.Range(0, 4096).Select(i => (byte)(i * 7)).ToArray();

    public NbdBadInputTests(ITestOutputHelper output)
    {
        _output = output;
        _device = new MemoryBlockDevice(Size, new MemoryBlockDeviceOptions { LogicalBlockSize = 512, MaxTransferBytes = (int)MaxBlock });
        _server = new InProcessNbdServer(output, new NbdServerOptions { MaxDiscardedPayload = 8 << 20 },
            new NbdExport("", _device), new NbdExport("ro", _device, readOnly: true));
        _bystander = _server.Connect();
    }

    public Task InitializeAsync()
    {
        Assert.Equal(0u, _bystander.WriteSync(Size - 4096, _bystanderData).Error);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        // Whatever the bad client did, the bystander is still served.
        var reply = _bystander.ReadSync(Size - 4096, 4096);
        Assert.Equal(0u, reply.Error);
        Assert.Equal(_bystanderData, reply.Data);
        Assert.Equal(0u, _bystander.WriteSync(0, new byte[512]).Error);
        _bystander.Dispose();
        await _server.DisposeAsync();
    }

    [Fact]
    public void Bad_request_magic_disconnects_only_that_client()
    {
        using var client = _server.Connect();
        var request = new byte[NbdRequest.Size];
        new NbdRequest(0, NbdCommand.Read, 1, 0, 512).Write(request);
        request[0] ^= 0xff;
        client.SendRaw(request);
        Assert.True(client.WaitForServerClose(TimeSpan.FromSeconds(10)));
        Assert.Contains(_server.Logs.Lines, l => l.Contains("bad magic"));
    }

    [Theory]
    [InlineData(NbdCommand.Read, 1ul, 512u)]
    [InlineData(NbdCommand.Read, 0ul, 100u)]
    [InlineData(NbdCommand.Write, 256ul, 512u)]
    [InlineData(NbdCommand.Write, 0ul, 1000u)]
    [InlineData(NbdCommand.Trim, 512ul, 513u)]
    [InlineData(NbdCommand.WriteZeroes, 100ul, 512u)]
    public void Unaligned_requests_are_invalid(NbdCommand command, ulong offset, uint length)
    {
        using var client = _server.Connect();
        var payload = command == NbdCommand.Write ? new byte[length] : [];
        var reply = client.Request(c => c.Send(command, offset, length, payload: payload));
        Assert.Equal(BlockError.InvalidArgument, reply.BlockError);
        AssertStillInStep(client);
    }

    [Theory]
    [InlineData(NbdCommand.Read, BlockError.InvalidArgument)]
    [InlineData(NbdCommand.Trim, BlockError.InvalidArgument)]
    [InlineData(NbdCommand.Write, BlockError.NoSpace)]
    [InlineData(NbdCommand.WriteZeroes, BlockError.NoSpace)]
    public void Requests_past_the_end_get_the_documented_error(NbdCommand command, BlockError expected)
    {
        using var client = _server.Connect();
        var payload = command == NbdCommand.Write ? new byte[8192] : [];
        var reply = client.Request(c => c.Send(command, Size - 4096, 8192, payload: payload));
        Assert.Equal(expected, reply.BlockError);
        AssertStillInStep(client);
    }

    [Fact]
    public void An_offset_that_overflows_is_past_the_end()
    {
        using var client = _server.Connect();
        Assert.Equal(BlockError.InvalidArgument, client.ReadSync(ulong.MaxValue - 511, 512).BlockError);
        AssertStillInStep(client);
    }

    [Fact]
    public void A_read_over_the_maximum_block_size_is_invalid()
    {
        using var client = _server.Connect();
        Assert.Equal(BlockError.InvalidArgument, client.ReadSync(0, MaxBlock * 2).BlockError);
        AssertStillInStep(client);
    }

    [Fact]
    public void A_write_over_the_maximum_is_refused_and_its_payload_skipped()
    {
        using var client = _server.Connect();
        var writesBefore = _device.Statistics.Writes;
        var reply = client.WriteSync(0, Enumerable.Repeat((byte)0xee, (int)MaxBlock * 2).ToArray());
        Assert.Equal(BlockError.InvalidArgument, reply.BlockError);
        Assert.Equal(writesBefore, _device.Statistics.Writes);
        AssertStillInStep(client);
    }

    [Fact]
    public void Write_zeroes_and_trim_longer_than_the_maximum_block_size_are_done_not_refused()
    {
        // nbdcopy zeroes holes with 128 MiB WRITE_ZEROES: the maximum block size bounds payloads only.
        using var client = _server.Connect();
        const uint length = MaxBlock * 8;
        Assert.Equal(0u, client.WriteSync(MaxBlock * 3, Enumerable.Repeat((byte)0x5a, 4096).ToArray()).Error);
        Assert.Equal(0u, client.Request(c => c.Send(NbdCommand.WriteZeroes, 0, length)).Error);
        ByteAssert.All(client.ReadSync(MaxBlock * 3, 4096).Data, 0);
        Assert.Equal(0u, client.Request(c => c.Send(NbdCommand.Trim, 0, length)).Error);
        AssertStillInStep(client);
    }

    [Fact]
    public void A_write_payload_too_large_to_skip_disconnects_the_client()
    {
        using var client = _server.Connect();
        client.Send(new NbdRequest(0, NbdCommand.Write, 1, 0, 64 << 20)); // header only; 64 MiB announced
        Assert.True(client.WaitForServerClose(TimeSpan.FromSeconds(10)));
    }

    [Theory]
    [InlineData((ushort)7)]   // NBD_CMD_BLOCK_STATUS without a meta context
    [InlineData((ushort)8)]   // NBD_CMD_RESIZE
    [InlineData((ushort)0x1234)]
    public void Unknown_commands_are_invalid(ushort command)
    {
        using var client = _server.Connect();
        Assert.Equal(BlockError.InvalidArgument, client.Request(c => c.Send((NbdCommand)command, 0, 512)).BlockError);
        AssertStillInStep(client);
    }

    [Theory]
    [InlineData(NbdCommand.Read, NbdCommandFlags.DontFragment)]    // DF without structured replies
    [InlineData(NbdCommand.Trim, NbdCommandFlags.FastZero)]        // FAST_ZERO is for WRITE_ZEROES
    [InlineData(NbdCommand.Cache, NbdCommandFlags.Fua)]            // CACHE takes no flags
    [InlineData(NbdCommand.Write, NbdCommandFlags.NoHole)]         // NO_HOLE is for WRITE_ZEROES
    [InlineData(NbdCommand.Read, (NbdCommandFlags)0x8000)]
    public void Flags_not_valid_for_the_command_are_invalid(NbdCommand command, NbdCommandFlags flags)
    {
        using var client = _server.Connect();
        var payload = command == NbdCommand.Write ? new byte[512] : [];
        Assert.Equal(BlockError.InvalidArgument, client.Request(c => c.Send(command, 0, 512, flags, payload)).BlockError);
        AssertStillInStep(client);
    }

    [Fact]
    public void Flush_with_a_range_is_invalid()
    {
        using var client = _server.Connect();
        Assert.Equal(BlockError.InvalidArgument, client.Request(c => c.Send(NbdCommand.Flush, 512, 512)).BlockError);
        AssertStillInStep(client);
    }

    [Theory]
    [InlineData(NbdCommand.Write)]
    [InlineData(NbdCommand.Trim)]
    [InlineData(NbdCommand.WriteZeroes)]
    public void Writes_to_a_read_only_export_are_not_permitted(NbdCommand command)
    {
        using var client = _server.Connect("ro");
        var payload = command == NbdCommand.Write ? new byte[4096] : [];
        var before = _device.Statistics;
        Assert.Equal(BlockError.PermissionDenied, client.Request(c => c.Send(command, 0, 4096, payload: payload)).BlockError);
        Assert.Equal(before, _device.Statistics);
        AssertStillInStep(client);
    }

    [Fact]
    public void Errors_come_as_error_chunks_with_a_message_under_structured_replies()
    {
        using var client = _server.Connect(structuredReplies: true);
        var reply = client.ReadSync(1, 512);
        Assert.True(reply.Structured);
        Assert.Equal(BlockError.InvalidArgument, reply.BlockError);
        Assert.Contains("aligned", reply.ErrorMessage);
    }

    [Theory]
    [InlineData(4096, 100)]
    [InlineData(4096, 0)]
    [InlineData(1 << 20, 300_000)]
    public async Task A_client_vanishing_mid_payload_never_writes_anything(int length, int sent)
    {
        var before = _device.Statistics.Writes;
        using (var client = _server.Connect())
        {
            var message = new byte[NbdRequest.Size + sent];
            new NbdRequest(0, NbdCommand.Write, 77, 1 << 20, (uint)length).Write(message);
            Array.Fill(message, (byte)0xaa, NbdRequest.Size, sent);
            client.SendRaw(message);
            await Task.Delay(50);
        } // closed with the payload incomplete
        await Wait.Until(() => _server.Logs.Lines.Any(l => l.Contains("WRITE payload")));
        Assert.Equal(before, _device.Statistics.Writes);
        var stored = new byte[length];
        _device.Read(1 << 20, stored);
        ByteAssert.All(stored, 0);
    }

    [Fact]
    public async Task A_client_closing_in_the_middle_of_a_header_is_just_gone()
    {
        using (var client = _server.Connect())
        {
            client.SendRaw(new byte[10]);
        }
        await Wait.Until(() => _server.Logs.Lines.Any(l => l.Contains("middle of a request header")));
    }

    private void AssertStillInStep(RawNbdClient client)
    {
        var reply = client.ReadSync(Size - 4096, 4096);
        Assert.Equal(0u, reply.Error);
        Assert.Equal(_bystanderData, reply.Data);
    }
}
