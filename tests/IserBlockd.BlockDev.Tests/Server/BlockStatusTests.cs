using IserBlockd.BlockDev.Devices;
using IserBlockd.BlockDev.Nbd;
using IserBlockd.BlockDev.Nbd.Protocol;
using IserBlockd.BlockDev.Tests.Support;
using Xunit.Abstractions;

namespace IserBlockd.BlockDev.Tests.Server;

/// <summary>
/// What qemu-nbd offers beyond reads and writes: the <c>base:allocation</c> meta context and BLOCK_STATUS,
/// CACHE, FAST_ZERO, and ranges longer than the maximum block size for the commands without a payload.
/// </summary>
public sealed class BlockStatusTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const long Size = 16 << 20;
    private const int MaxBlock = 1 << 20;
    private const int Chunk = 64 << 10; // MemoryBlockDevice's allocation unit
    private const BlockAllocation HoleAndZero = BlockAllocation.Hole | BlockAllocation.Zero;

    private readonly MemoryBlockDevice _device = new(Size, new MemoryBlockDeviceOptions { MaxTransferBytes = MaxBlock });
    private InProcessNbdServer _server = null!;

    public Task InitializeAsync()
    {
        _server = new InProcessNbdServer(output, null, new NbdExport("", _device), new NbdExport("ro", _device, readOnly: true),
            new NbdExport("thick", new MemoryBlockDevice(Size, new MemoryBlockDeviceOptions
            {
                MaxTransferBytes = MaxBlock,
                Features = BlockDeviceFeatures.Flush | BlockDeviceFeatures.Trim, // no allocation status, no write-zeroes offload
            })));
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public void Base_allocation_is_listed_and_selected_and_unknown_contexts_are_passed_over()
    {
        using var client = RawNbdClient.Connect(_server.SocketPath);
        Assert.Equal(NbdOptionReplyType.Ack, client.Option(NbdOption.StructuredReply, [])[^1].Header.Type);

        foreach (var queries in new[] { Array.Empty<string>(), ["base:"], ["base:allocation"] })
        {
            var listed = client.Option(NbdOption.ListMetaContext, RawNbdClient.MetaContextRequest("", queries));
            Assert.Equal([NbdOptionReplyType.MetaContext, NbdOptionReplyType.Ack], listed.Select(r => r.Header.Type));
            Assert.Equal("base:allocation", NbdMetaContextReply.Read(listed[0].Data).Name);
        }
        var unknown = client.Option(NbdOption.SetMetaContext, RawNbdClient.MetaContextRequest("", "qemu:dirty-bitmap:x"));
        Assert.Equal(NbdOptionReplyType.Ack, Assert.Single(unknown).Header.Type);

        var set = client.Option(NbdOption.SetMetaContext, RawNbdClient.MetaContextRequest("", "qemu:dirty-bitmap:x", "base:allocation"));
        Assert.Equal([NbdOptionReplyType.MetaContext, NbdOptionReplyType.Ack], set.Select(r => r.Header.Type));
        Assert.Equal(new NbdMetaContextReply(NbdHandshake.AllocationContextId, "base:allocation"), NbdMetaContextReply.Read(set[0].Data));
    }

    [Fact]
    public void Meta_context_options_refuse_bad_input()
    {
        using var client = RawNbdClient.Connect(_server.SocketPath);
        // structured replies first
        Assert.Equal(NbdOptionReplyType.ErrInvalid,
            Assert.Single(client.Option(NbdOption.SetMetaContext, RawNbdClient.MetaContextRequest("", "base:allocation"))).Header.Type);
        Assert.Equal(NbdOptionReplyType.Ack, client.Option(NbdOption.StructuredReply, [])[^1].Header.Type);
        Assert.Equal(NbdOptionReplyType.ErrUnknown,
            Assert.Single(client.Option(NbdOption.SetMetaContext, RawNbdClient.MetaContextRequest("nope", "base:allocation"))).Header.Type);
        // a query count larger than the data
        Assert.Equal(NbdOptionReplyType.ErrInvalid,
            Assert.Single(client.Option(NbdOption.ListMetaContext, Hex.Bytes("00000000 ffffffff 0000"))).Header.Type);
        Assert.Equal(NbdOptionReplyType.Ack, client.Option(NbdOption.Info, RawNbdClient.InfoRequest(""))[^1].Header.Type);
    }

    [Fact]
    public void Block_status_reports_holes_that_read_as_zeroes_and_data()
    {
        Assert.Equal(0u, _server.Connect().WriteSync(1 << 20, new byte[Chunk].Select(_ => (byte)1).ToArray()).Error);
        using var client = _server.Connect(allocationContext: true);

        var reply = client.Request(c => c.Send(NbdCommand.BlockStatus, 0, 4 << 20));
        Assert.Equal(0u, reply.Error);
        var (contextId, extents) = reply.BlockStatus!.Value;
        Assert.Equal(NbdHandshake.AllocationContextId, contextId);
        Assert.Equal([new BlockExtent(1 << 20, HoleAndZero), new BlockExtent(Chunk, BlockAllocation.Data),
            new BlockExtent((3 << 20) - Chunk, HoleAndZero)], extents);

        // REQ_ONE: one descriptor, within the request
        var one = client.Request(c => c.Send(NbdCommand.BlockStatus, (1 << 20) - 4096, 8 << 20, NbdCommandFlags.ReqOne));
        Assert.Equal([new BlockExtent(4096, HoleAndZero)], one.BlockStatus!.Value.Extents);

        // longer than the maximum block size, up to the end
        var all = client.Request(c => c.Send(NbdCommand.BlockStatus, 0, (uint)Size));
        Assert.Equal(Size, all.BlockStatus!.Value.Extents.Sum(e => e.Length));
    }

    [Fact]
    public void A_device_that_cannot_tell_is_all_data()
    {
        using var client = _server.Connect("thick", allocationContext: true);
        var reply = client.Request(c => c.Send(NbdCommand.BlockStatus, 4096, 8 << 20));
        Assert.Equal([new BlockExtent(8 << 20, BlockAllocation.Data)], reply.BlockStatus!.Value.Extents);
    }

    [Theory]
    [InlineData(Size - 4096, 8192u)] // beyond the end
    [InlineData(Size + 4096, 512u)]  // starts beyond the end
    [InlineData(4096, 0u)]           // empty
    [InlineData(100, 512u)]          // unaligned
    public void Bad_block_status_requests_are_invalid_and_the_connection_goes_on(long offset, uint length)
    {
        using var client = _server.Connect(allocationContext: true);
        Assert.Equal(BlockError.InvalidArgument, client.Request(c => c.Send(NbdCommand.BlockStatus, (ulong)offset, length)).BlockError);
        Assert.Equal(BlockError.InvalidArgument,
            client.Request(c => c.Send(NbdCommand.BlockStatus, 0, 4096, NbdCommandFlags.Fua)).BlockError);
        Assert.Equal(0u, client.Request(c => c.Send(NbdCommand.BlockStatus, 0, 4096)).Error);
    }

    [Fact]
    public void Block_status_without_a_negotiated_context_is_invalid()
    {
        using var plain = _server.Connect(structuredReplies: true);
        Assert.Equal(BlockError.InvalidArgument, plain.Request(c => c.Send(NbdCommand.BlockStatus, 0, 4096)).BlockError);

        // selected for one export, then GO on another: not negotiated there
        using var client = RawNbdClient.Connect(_server.SocketPath);
        client.Option(NbdOption.StructuredReply, []);
        client.StructuredReplies = true;
        Assert.Equal(NbdOptionReplyType.MetaContext,
            client.Option(NbdOption.SetMetaContext, RawNbdClient.MetaContextRequest("", "base:allocation"))[0].Header.Type);
        var go = client.Option(NbdOption.Go, RawNbdClient.InfoRequest("thick", NbdInfoType.BlockSize));
        Assert.Equal(NbdOptionReplyType.Ack, go[^1].Header.Type);
        Assert.Equal(BlockError.InvalidArgument, client.Request(c => c.Send(NbdCommand.BlockStatus, 0, 4096)).BlockError);
    }

    [Fact]
    public void Cache_succeeds_for_any_length_and_on_read_only_exports()
    {
        using var client = _server.Connect();
        Assert.True(client.Flags.HasFlag(NbdTransmissionFlags.SendCache));
        Assert.Equal(0u, client.Request(c => c.Send(NbdCommand.Cache, 0, 8 << 20)).Error);
        using var readOnly = _server.Connect("ro");
        Assert.Equal(0u, readOnly.Request(c => c.Send(NbdCommand.Cache, 4096, 4096)).Error);
        Assert.Equal(BlockError.InvalidArgument, readOnly.Request(c => c.Send(NbdCommand.Cache, Size, 4096)).BlockError);
    }

    [Fact]
    public void Trim_and_write_zeroes_longer_than_the_maximum_block_size_are_done()
    {
        var ones = Enumerable.Repeat((byte)1, MaxBlock).ToArray();
        using var client = _server.Connect();
        for (var i = 0; i < 8; i++) Assert.Equal(0u, client.WriteSync((ulong)i * MaxBlock, ones).Error);
        Assert.Equal(0u, client.Request(c => c.Send(NbdCommand.Trim, 0, 4 << 20)).Error);
        Assert.Equal(0u, client.Request(c => c.Send(NbdCommand.WriteZeroes, 4 << 20, 4 << 20, NbdCommandFlags.Fua)).Error);
        Assert.Equal(new byte[MaxBlock], client.ReadSync(2 << 20, MaxBlock).Data);
        Assert.Equal(new byte[MaxBlock], client.ReadSync(7 << 20, MaxBlock).Data);
        Assert.False(_device.IsAllocated(5 << 20));
    }

    [Fact]
    public void Fast_zero_is_done_where_zeroing_is_offloaded_and_refused_at_once_where_it_would_write_zeroes()
    {
        var ones = Enumerable.Repeat((byte)1, 4096).ToArray();
        using var client = _server.Connect();
        Assert.True(client.Flags.HasFlag(NbdTransmissionFlags.SendFastZero));
        Assert.Equal(0u, client.WriteSync(0, ones).Error);
        Assert.Equal(0u, client.Request(c => c.Send(NbdCommand.WriteZeroes, 0, 4096, NbdCommandFlags.FastZero)).Error);
        Assert.Equal(new byte[4096], client.ReadSync(0, 4096).Data);

        using var thick = _server.Connect("thick", structuredReplies: true);
        Assert.Equal(0u, thick.WriteSync(0, ones).Error);
        var refused = thick.Request(c => c.Send(NbdCommand.WriteZeroes, 0, 4096, NbdCommandFlags.FastZero | NbdCommandFlags.NoHole));
        Assert.Equal(BlockError.NotSupported, refused.BlockError);
        Assert.Contains("not be faster", refused.ErrorMessage);
        Assert.Equal(ones, thick.ReadSync(0, 4096).Data); // nothing was written
        Assert.Equal(0u, thick.Request(c => c.Send(NbdCommand.WriteZeroes, 0, 4096)).Error); // the slow way is fine without the flag
        Assert.Equal(new byte[4096], thick.ReadSync(0, 4096).Data);
    }
}
