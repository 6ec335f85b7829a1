using System.Buffers.Binary;
using IserBlockd.BlockDev.Devices;
using IserBlockd.BlockDev.Nbd;
using IserBlockd.BlockDev.Nbd.Protocol;
using IserBlockd.BlockDev.Tests.Support;
using Xunit.Abstractions;

namespace IserBlockd.BlockDev.Tests.Server;

/// <summary>Option haggling against our server, byte by byte (doc/proto.md, "Fixed newstyle negotiation").</summary>
public class HandshakeTests(ITestOutputHelper output)
{
    private const long Size = 8 << 20;

    private static NbdExport Export(string name = "", string description = "", bool readOnly = false, int logicalBlock = 512,
        BlockDeviceFeatures? features = null) =>
        new(name, new MemoryBlockDevice(Size, new MemoryBlockDeviceOptions
        {
            LogicalBlockSize = logicalBlock,
            Features = features ?? new MemoryBlockDeviceOptions().Features,
        }), description, readOnly);

    [Fact]
    public async Task Greeting_offers_fixed_newstyle_and_no_zeroes()
    {
        await using var server = new InProcessNbdServer(output, null, Export());
        using var client = RawNbdClient.Connect(server.SocketPath);
        Assert.Equal(NbdHandshakeFlags.FixedNewstyle | NbdHandshakeFlags.NoZeroes, client.ServerFlags);
    }

    [Fact]
    public async Task List_returns_every_export_with_its_description_then_ack()
    {
        await using var server = new InProcessNbdServer(output, null, Export("", "default one"), Export("lun1", "second"));
        using var client = RawNbdClient.Connect(server.SocketPath);
        var replies = client.Option(NbdOption.List, []);
        Assert.Equal([NbdOptionReplyType.Server, NbdOptionReplyType.Server, NbdOptionReplyType.Ack], replies.Select(r => r.Header.Type));
        var entries = replies.Take(2).Select(r => NbdServerListEntry.Parse(r.Data)).ToArray();
        Assert.Equal([new NbdServerListEntry("", "default one"), new NbdServerListEntry("lun1", "second")], entries);
        Assert.All(replies, r => Assert.Equal(NbdOption.List, r.Header.Option));
    }

    [Fact]
    public async Task List_with_data_is_invalid()
    {
        await using var server = new InProcessNbdServer(output, null, Export());
        using var client = RawNbdClient.Connect(server.SocketPath);
        var replies = client.Option(NbdOption.List, [1, 2, 3]);
        Assert.Equal(NbdOptionReplyType.ErrInvalid, Assert.Single(replies).Header.Type);
    }

    [Fact]
    public async Task Info_describes_the_export_and_stays_in_negotiation()
    {
        await using var server = new InProcessNbdServer(output, null, Export("lun0", "a test export"));
        using var client = RawNbdClient.Connect(server.SocketPath);
        var replies = client.Option(NbdOption.Info,
            RawNbdClient.InfoRequest("lun0", NbdInfoType.Name, NbdInfoType.Description, NbdInfoType.BlockSize));
        Assert.Equal(NbdOptionReplyType.Ack, replies[^1].Header.Type);
        var infos = replies.Where(r => r.Header.Type == NbdOptionReplyType.Info)
            .ToDictionary(r => (NbdInfoType)BinaryPrimitives.ReadUInt16BigEndian(r.Data), r => r.Data);
        var export = NbdInfoExport.Read(infos[NbdInfoType.Export]);
        Assert.Equal((ulong)Size, export.Size);
        Assert.Equal(NbdTransmissionFlags.HasFlags | NbdTransmissionFlags.SendFlush | NbdTransmissionFlags.SendFua |
                     NbdTransmissionFlags.SendTrim | NbdTransmissionFlags.SendWriteZeroes | NbdTransmissionFlags.CanMultiConn |
                     NbdTransmissionFlags.SendCache | NbdTransmissionFlags.SendFastZero,
            export.Flags);
        Assert.Equal("lun0", NbdInfoName.Read(infos[NbdInfoType.Name]).Name);
        Assert.Equal("a test export", NbdInfoDescription.Read(infos[NbdInfoType.Description]).Description);
        Assert.Equal(new NbdInfoBlockSize(512, 4096, 32 << 20), NbdInfoBlockSize.Read(infos[NbdInfoType.BlockSize]));

        // Still negotiating: another option is answered.
        Assert.Equal(NbdOptionReplyType.Ack, client.Option(NbdOption.StructuredReply, [])[^1].Header.Type);
    }

    [Fact]
    public async Task Go_for_an_unknown_export_is_unknown_and_the_client_may_try_again()
    {
        await using var server = new InProcessNbdServer(output, null, Export("lun0"));
        using var client = RawNbdClient.Connect(server.SocketPath);
        var failed = client.Option(NbdOption.Go, RawNbdClient.InfoRequest("nope", NbdInfoType.BlockSize));
        Assert.Equal(NbdOptionReplyType.ErrUnknown, Assert.Single(failed).Header.Type);
        Assert.Contains("nope", System.Text.Encoding.UTF8.GetString(failed[0].Data));

        var go = client.Option(NbdOption.Go, RawNbdClient.InfoRequest("lun0", NbdInfoType.BlockSize));
        Assert.Equal(NbdOptionReplyType.Ack, go[^1].Header.Type);
        client.ApplyInfo(go);
        Assert.Equal(0u, client.ReadSync(0, 512).Error);
    }

    [Fact]
    public async Task Malformed_go_is_invalid()
    {
        await using var server = new InProcessNbdServer(output, null, Export());
        using var client = RawNbdClient.Connect(server.SocketPath);
        var replies = client.Option(NbdOption.Go, Hex.Bytes("00000010 0000"));
        Assert.Equal(NbdOptionReplyType.ErrInvalid, Assert.Single(replies).Header.Type);
    }

    [Theory]
    [InlineData(NbdOption.StartTls)]
    [InlineData(NbdOption.ExtendedHeaders)]
    [InlineData(NbdOption.PeekExport)]
    [InlineData((NbdOption)0x4242)]
    public async Task Options_the_server_does_not_implement_are_unsupported(NbdOption option)
    {
        await using var server = new InProcessNbdServer(output, null, Export());
        using var client = RawNbdClient.Connect(server.SocketPath);
        var reply = Assert.Single(client.Option(option, [0, 0, 0, 0]));
        Assert.Equal(NbdOptionReplyType.ErrUnsupported, reply.Header.Type);
        Assert.Equal(option, reply.Header.Option);
        // the session goes on
        Assert.Equal(NbdOptionReplyType.Ack, client.Option(NbdOption.Info, RawNbdClient.InfoRequest(""))[^1].Header.Type);
    }

    [Fact]
    public async Task Structured_reply_with_data_is_invalid()
    {
        await using var server = new InProcessNbdServer(output, null, Export());
        using var client = RawNbdClient.Connect(server.SocketPath);
        Assert.Equal(NbdOptionReplyType.ErrInvalid, Assert.Single(client.Option(NbdOption.StructuredReply, [1])).Header.Type);
    }

    [Fact]
    public async Task Df_is_offered_only_after_structured_replies_are_negotiated()
    {
        await using var server = new InProcessNbdServer(output, null, Export());
        using var plain = RawNbdClient.Open(server.SocketPath);
        Assert.False(plain.Flags.HasFlag(NbdTransmissionFlags.SendDf));
        using var structured = RawNbdClient.Open(server.SocketPath, structuredReplies: true);
        Assert.True(structured.Flags.HasFlag(NbdTransmissionFlags.SendDf));
    }

    [Theory]
    [InlineData(false, NbdExportNameReply.PaddedSize)]
    [InlineData(true, NbdExportNameReply.ShortSize)]
    public async Task Export_name_answers_size_and_flags_with_zeroes_unless_no_zeroes(bool noZeroes, int expectedLength)
    {
        await using var server = new InProcessNbdServer(output, null, Export("lun0"));
        var flags = NbdClientFlags.FixedNewstyle | (noZeroes ? NbdClientFlags.NoZeroes : 0);
        using var client = RawNbdClient.Connect(server.SocketPath, flags);
        client.SendOption(NbdOption.ExportName, "lun0"u8);
        var reply = client.ReceiveExactly(expectedLength);
        var parsed = NbdExportNameReply.Read(reply);
        Assert.Equal((ulong)Size, parsed.Size);
        Assert.True(parsed.Flags.HasFlag(NbdTransmissionFlags.HasFlags));
        ByteAssert.All(reply[NbdExportNameReply.ShortSize..], 0);
        // Transmission follows immediately: nothing else was sent, and a request is answered.
        Assert.Equal(0u, client.WriteSync(0, new byte[512]).Error);
    }

    [Fact]
    public async Task Export_name_for_an_unknown_export_hangs_up()
    {
        await using var server = new InProcessNbdServer(output, null, Export("lun0"));
        using var client = RawNbdClient.Connect(server.SocketPath);
        client.SendOption(NbdOption.ExportName, "other"u8);
        Assert.True(client.WaitForServerClose(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Abort_is_acknowledged_then_the_server_closes()
    {
        await using var server = new InProcessNbdServer(output, null, Export());
        using var client = RawNbdClient.Connect(server.SocketPath);
        var reply = Assert.Single(client.Option(NbdOption.Abort, []));
        Assert.Equal(NbdOptionReplyType.Ack, reply.Header.Type);
        Assert.True(client.WaitForServerClose(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Unknown_client_flags_close_the_connection()
    {
        await using var server = new InProcessNbdServer(output, null, Export());
        using var client = RawNbdClient.Connect(server.SocketPath, NbdClientFlags.FixedNewstyle | (NbdClientFlags)0x10);
        Assert.True(client.WaitForServerClose(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Bad_option_magic_closes_the_connection()
    {
        await using var server = new InProcessNbdServer(output, null, Export());
        using var client = RawNbdClient.Connect(server.SocketPath);
        client.SendRaw(Hex.Bytes("0123456789abcdef 00000003 00000000"));
        Assert.True(client.WaitForServerClose(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Oversized_option_data_is_skipped_and_refused_as_too_big()
    {
        await using var server = new InProcessNbdServer(output, new NbdServerOptions { MaxOptionLength = 8192 }, Export());
        using var client = RawNbdClient.Connect(server.SocketPath);
        var reply = Assert.Single(client.Option(NbdOption.Info, new byte[100_000]));
        Assert.Equal(NbdOptionReplyType.ErrTooBig, reply.Header.Type);
        Assert.Equal(NbdOptionReplyType.Ack, client.Option(NbdOption.Info, RawNbdClient.InfoRequest(""))[^1].Header.Type);
    }

    [Fact]
    public async Task Go_without_block_size_request_is_served_by_default()
    {
        await using var server = new InProcessNbdServer(output, null, Export());
        using var client = RawNbdClient.Connect(server.SocketPath);
        var go = client.Option(NbdOption.Go, RawNbdClient.InfoRequest(""));
        Assert.Equal(NbdOptionReplyType.Ack, go[^1].Header.Type);
        // The constraints are sent anyway (and enforced): an unaligned request is refused.
        Assert.Contains(go, r => r.Header.Type == NbdOptionReplyType.Info && BinaryPrimitives.ReadUInt16BigEndian(r.Data) == (ushort)NbdInfoType.BlockSize);
        client.ApplyInfo(go);
        Assert.Equal(BlockError.InvalidArgument, client.ReadSync(1, 511).BlockError);
    }

    [Fact]
    public async Task A_server_requiring_block_sizes_refuses_go_without_the_request_but_tells_the_sizes_first()
    {
        await using var server = new InProcessNbdServer(output, new NbdServerOptions { RequireBlockSizeNegotiation = true }, Export(logicalBlock: 4096));
        using var client = RawNbdClient.Connect(server.SocketPath);
        var refused = client.Option(NbdOption.Go, RawNbdClient.InfoRequest(""));
        Assert.Equal(NbdOptionReplyType.ErrBlockSizeRequired, refused[^1].Header.Type);
        var blockSize = refused.Single(r => r.Header.Type == NbdOptionReplyType.Info && BinaryPrimitives.ReadUInt16BigEndian(r.Data) == (ushort)NbdInfoType.BlockSize);
        Assert.Equal(4096u, NbdInfoBlockSize.Read(blockSize.Data).Minimum);

        var accepted = client.Option(NbdOption.Go, RawNbdClient.InfoRequest("", NbdInfoType.BlockSize));
        Assert.Equal(NbdOptionReplyType.Ack, accepted[^1].Header.Type);
    }

    [Fact]
    public async Task A_server_requiring_block_sizes_hangs_up_on_export_name()
    {
        await using var server = new InProcessNbdServer(output, new NbdServerOptions { RequireBlockSizeNegotiation = true }, Export());
        using var client = RawNbdClient.Connect(server.SocketPath);
        client.SendOption(NbdOption.ExportName, []);
        Assert.True(client.WaitForServerClose(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Connections_beyond_the_export_limit_are_refused_by_policy()
    {
        var export = new NbdExport("", new MemoryBlockDevice(Size)) { MaxConnections = 1 };
        await using var server = new InProcessNbdServer(output, null, export);
        using var first = RawNbdClient.Open(server.SocketPath);
        using var second = RawNbdClient.Connect(server.SocketPath);
        var refused = second.Option(NbdOption.Go, RawNbdClient.InfoRequest("", NbdInfoType.BlockSize));
        Assert.Equal(NbdOptionReplyType.ErrPolicy, refused[^1].Header.Type);
        first.Disconnect();
        Assert.True(first.WaitForServerClose(TimeSpan.FromSeconds(10)));
        await Wait.Until(() => export.ActiveConnections == 0);
        Assert.Equal(NbdOptionReplyType.Ack, second.Option(NbdOption.Go, RawNbdClient.InfoRequest("", NbdInfoType.BlockSize))[^1].Header.Type);
    }

    [Fact]
    public async Task Read_only_exports_say_so_and_offer_no_write_features()
    {
        await using var server = new InProcessNbdServer(output, null, Export(readOnly: true));
        using var client = RawNbdClient.Open(server.SocketPath);
        Assert.True(client.Flags.HasFlag(NbdTransmissionFlags.ReadOnly));
        Assert.False(client.Flags.HasFlag(NbdTransmissionFlags.SendTrim));
        Assert.False(client.Flags.HasFlag(NbdTransmissionFlags.SendWriteZeroes));
        Assert.False(client.Flags.HasFlag(NbdTransmissionFlags.SendFua));
    }

    [Fact]
    public async Task Handshake_that_stalls_is_cut_off_after_the_timeout()
    {
        await using var server = new InProcessNbdServer(output, new NbdServerOptions { HandshakeTimeout = TimeSpan.FromMilliseconds(300) }, Export());
        using var client = RawNbdClient.Connect(server.SocketPath);
        Assert.True(client.WaitForServerClose(TimeSpan.FromSeconds(10)));
        await Wait.Until(() => server.Server.ConnectionCount == 0);
    }

    [Fact]
    public async Task The_protocol_runs_over_an_in_memory_transport_too()
    {
        await using var server = new NbdServer();
        var device = new MemoryBlockDevice(Size);
        server.AddExport(new NbdExport("", device));
        var (transport, client) = PipeTransport.CreatePair();
        var serving = server.ServeAsync(transport);

        var greeting = await ReadExactlyAsync(client, NbdServerGreeting.Size);
        Assert.Equal(NbdHandshakeFlags.FixedNewstyle | NbdHandshakeFlags.NoZeroes, NbdServerGreeting.Read(greeting).Flags);
        await client.WriteAsync(Hex.Bytes("00000003"));
        var go = RawNbdClient.InfoRequest("", NbdInfoType.BlockSize);
        var option = new byte[NbdOptionHeader.Size + go.Length];
        new NbdOptionHeader(NbdOption.Go, (uint)go.Length).Write(option);
        go.CopyTo(option, NbdOptionHeader.Size);
        await client.WriteAsync(option);
        while (true)
        {
            var header = NbdOptionReplyHeader.Read(await ReadExactlyAsync(client, NbdOptionReplyHeader.Size));
            await ReadExactlyAsync(client, (int)header.Length);
            if (header.Type == NbdOptionReplyType.Ack) break;
        }

        var request = new byte[NbdRequest.Size + 512];
        new NbdRequest(0, NbdCommand.Write, 1, 1024, 512).Write(request);
        Array.Fill(request, (byte)0x5a, NbdRequest.Size, 512);
        await client.WriteAsync(request);
        var reply = NbdSimpleReply.Read(await ReadExactlyAsync(client, NbdSimpleReply.Size));
        Assert.Equal(new NbdSimpleReply(0, 1), reply);
        var stored = new byte[512];
        device.Read(1024, stored);
        ByteAssert.All(stored, 0x5a);

        new NbdRequest(0, NbdCommand.Disconnect, 2, 0, 0).Write(request);
        await client.WriteAsync(request.AsMemory(0, NbdRequest.Size));
        await serving.WaitAsync(TimeSpan.FromSeconds(10));
    }

    private static async Task<byte[]> ReadExactlyAsync(Stream stream, int count)
    {
        var buffer = new byte[count];
        await stream.ReadExactlyAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        return buffer;
    }
}
