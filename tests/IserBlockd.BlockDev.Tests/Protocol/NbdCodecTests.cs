using IserBlockd.BlockDev.Nbd.Protocol;
using IserBlockd.BlockDev.Tests.Support;

namespace IserBlockd.BlockDev.Tests.Protocol;

/// <summary>Every NBD message against byte vectors written out from doc/proto.md.</summary>
public class NbdCodecTests
{
    [Fact]
    public void Server_greeting_is_NBDMAGIC_IHAVEOPT_and_handshake_flags()
    {
        var bytes = new byte[NbdServerGreeting.Size];
        new NbdServerGreeting(NbdHandshakeFlags.FixedNewstyle | NbdHandshakeFlags.NoZeroes).Write(bytes);
        Assert.Equal("NBDMAGIC"u8.ToArray(), bytes[..8]);
        Assert.Equal("IHAVEOPT"u8.ToArray(), bytes[8..16]);
        Assert.Equal(Hex.Bytes("00 03"), bytes[16..]);
        Assert.Equal(NbdHandshakeFlags.FixedNewstyle | NbdHandshakeFlags.NoZeroes, NbdServerGreeting.Read(bytes).Flags);
    }

    [Fact]
    public void Greeting_with_oldstyle_magic_is_rejected()
    {
        var oldstyle = Hex.Bytes("4e42444d41474943 0000420281861253 0000");
        Assert.Throws<NbdProtocolException>(() => NbdServerGreeting.Read(oldstyle));
    }

    [Fact]
    public void Client_flags_are_32_bits()
    {
        Assert.Equal(NbdClientFlags.FixedNewstyle | NbdClientFlags.NoZeroes, NbdClientGreeting.Read(Hex.Bytes("00000003")).Flags);
    }

    [Fact]
    public void Option_header_is_IHAVEOPT_option_length()
    {
        var bytes = Hex.Bytes("49484156454F5054 00000007 0000000c");
        var header = NbdOptionHeader.Read(bytes);
        Assert.Equal(new NbdOptionHeader(NbdOption.Go, 12), header);
        var written = new byte[NbdOptionHeader.Size];
        header.Write(written);
        Assert.Equal(bytes, written);
        Assert.Throws<NbdProtocolException>(() => NbdOptionHeader.Read(Hex.Bytes("49484156454F5055 00000007 00000000")));
    }

    [Fact]
    public void Option_reply_header_has_reply_magic_option_type_length()
    {
        var bytes = new byte[NbdOptionReplyHeader.Size];
        new NbdOptionReplyHeader(NbdOption.Go, NbdOptionReplyType.ErrBlockSizeRequired, 5).Write(bytes);
        Assert.Equal(Hex.Bytes("0003e889045565a9 00000007 80000008 00000005"), bytes);
        var read = NbdOptionReplyHeader.Read(bytes);
        Assert.True(read.IsError);
        Assert.False(new NbdOptionReplyHeader(NbdOption.List, NbdOptionReplyType.Server, 0).IsError);
    }

    [Theory]
    [InlineData(NbdOptionReplyType.ErrUnsupported, 0x80000001u)]
    [InlineData(NbdOptionReplyType.ErrPolicy, 0x80000002u)]
    [InlineData(NbdOptionReplyType.ErrInvalid, 0x80000003u)]
    [InlineData(NbdOptionReplyType.ErrUnknown, 0x80000006u)]
    [InlineData(NbdOptionReplyType.ErrBlockSizeRequired, 0x80000008u)]
    [InlineData(NbdOptionReplyType.ErrTooBig, 0x80000009u)]
    public void Option_error_codes_match_the_protocol(NbdOptionReplyType type, uint value) => Assert.Equal(value, (uint)type);

    [Fact]
    public void Go_request_carries_name_and_information_requests()
    {
        // name "disk", two requests: NBD_INFO_BLOCK_SIZE (3), NBD_INFO_NAME (1)
        var bytes = Hex.Bytes("00000004 6469736b 0002 0003 0001");
        var request = NbdExportInfoRequest.Parse(bytes);
        Assert.Equal("disk", request.ExportName);
        Assert.Equal([NbdInfoType.BlockSize, NbdInfoType.Name], request.InformationRequests);
        var written = new byte[request.GetSize()];
        request.Write(written);
        Assert.Equal(bytes, written);
    }

    [Theory]
    [InlineData("00000004 6469")]                     // shorter than 6
    [InlineData("00000009 6469736b 0000")]            // name longer than the data
    [InlineData("00000004 6469736b 0002 0003")]       // fewer requests than counted
    [InlineData("00000004 6469736b 0000 0001")]       // trailing bytes
    [InlineData("00000002 6400 0000")]                // NUL in the name
    [InlineData("00000002 c328 0000")]                // invalid UTF-8
    public void Malformed_go_requests_are_protocol_errors(string hex) =>
        Assert.Throws<NbdProtocolException>(() => NbdExportInfoRequest.Parse(Hex.Bytes(hex)));

    [Fact]
    public void Info_export_is_type_size_flags()
    {
        var bytes = new byte[NbdInfoExport.Length];
        new NbdInfoExport(0x4000_0000, NbdTransmissionFlags.HasFlags | NbdTransmissionFlags.SendFlush | NbdTransmissionFlags.CanMultiConn).Write(bytes);
        Assert.Equal(Hex.Bytes("0000 0000000040000000 0105"), bytes);
    }

    [Fact]
    public void Info_block_size_is_type_and_three_sizes()
    {
        var bytes = new byte[NbdInfoBlockSize.Length];
        new NbdInfoBlockSize(512, 4096, 32 << 20).Write(bytes);
        Assert.Equal(Hex.Bytes("0003 00000200 00001000 02000000"), bytes);
        Assert.Equal(new NbdInfoBlockSize(512, 4096, 32 << 20), NbdInfoBlockSize.Read(bytes));
    }

    [Fact]
    public void Info_name_and_description_are_type_then_string()
    {
        var name = new NbdInfoName("lun0");
        var bytes = new byte[name.GetLength()];
        name.Write(bytes);
        Assert.Equal(Hex.Bytes("0001 6c756e30"), bytes);
        var description = new NbdInfoDescription("x");
        bytes = new byte[description.GetLength()];
        description.Write(bytes);
        Assert.Equal(Hex.Bytes("0002 78"), bytes);
    }

    [Fact]
    public void List_entry_is_name_length_name_description()
    {
        var entry = new NbdServerListEntry("a", "bc");
        var bytes = new byte[entry.GetSize()];
        entry.Write(bytes);
        Assert.Equal(Hex.Bytes("00000001 61 6263"), bytes);
        Assert.Equal(entry, NbdServerListEntry.Parse(bytes));
    }

    [Fact]
    public void Export_name_reply_has_124_zero_bytes_unless_no_zeroes()
    {
        var reply = new NbdExportNameReply(1 << 20, NbdTransmissionFlags.HasFlags | NbdTransmissionFlags.ReadOnly);
        var padded = new byte[NbdExportNameReply.PaddedSize];
        Array.Fill(padded, (byte)0xff);
        Assert.Equal(134, reply.Write(padded, noZeroes: false));
        Assert.Equal(Hex.Bytes("0000000000100000 0003"), padded[..10]);
        ByteAssert.All(padded[10..], 0);
        var shortReply = new byte[NbdExportNameReply.ShortSize];
        Assert.Equal(10, reply.Write(shortReply, noZeroes: true));
        Assert.Equal(padded[..10], shortReply);
    }

    [Fact]
    public void Request_layout_matches_the_protocol()
    {
        // magic, flags FUA, type WRITE, handle, offset 4096, length 512
        var bytes = Hex.Bytes("25609513 0001 0001 0102030405060708 0000000000001000 00000200");
        Assert.True(NbdRequest.TryRead(bytes, out var request));
        Assert.Equal(new NbdRequest(NbdCommandFlags.Fua, NbdCommand.Write, 0x0102030405060708, 4096, 512), request);
        var written = new byte[NbdRequest.Size];
        request.Write(written);
        Assert.Equal(bytes, written);
    }

    [Fact]
    public void Request_with_bad_magic_is_not_read()
    {
        var bytes = Hex.Bytes("12560953 0000 0000 0000000000000001 0000000000000000 00000200"); // historic magic
        Assert.False(NbdRequest.TryRead(bytes, out _));
    }

    [Fact]
    public void Simple_reply_is_magic_error_handle()
    {
        var bytes = new byte[NbdSimpleReply.Size];
        new NbdSimpleReply((uint)BlockError.NoSpace, 0xdeadbeef).Write(bytes);
        Assert.Equal(Hex.Bytes("67446698 0000001c 00000000deadbeef"), bytes);
    }

    [Fact]
    public void Offset_data_chunk_prefix_covers_offset_and_data()
    {
        var bytes = new byte[NbdOffsetDataChunk.PrefixSize];
        new NbdOffsetDataChunk(7, 0x200, 4096, Done: true).WritePrefix(bytes);
        // magic, flags DONE, type OFFSET_DATA, handle, length 8 + 4096, offset
        Assert.Equal(Hex.Bytes("668e33ef 0001 0001 0000000000000007 00001008 0000000000000200"), bytes);
    }

    [Fact]
    public void Error_chunk_carries_errno_and_message()
    {
        var chunk = new NbdErrorChunk(9, (uint)BlockError.InvalidArgument, "bad"u8);
        var bytes = new byte[chunk.Size];
        chunk.Write(bytes);
        Assert.Equal(Hex.Bytes("668e33ef 0001 8001 0000000000000009 00000009 00000016 0003 626164"), bytes);
        var (error, message) = NbdErrorChunk.ReadPayload(bytes.AsSpan(NbdStructuredReplyHeader.Size));
        Assert.Equal(22u, error);
        Assert.Equal("bad", message);
    }

    [Theory]
    [InlineData(NbdTransmissionFlags.HasFlags, 0x0001)]
    [InlineData(NbdTransmissionFlags.ReadOnly, 0x0002)]
    [InlineData(NbdTransmissionFlags.SendFlush, 0x0004)]
    [InlineData(NbdTransmissionFlags.SendFua, 0x0008)]
    [InlineData(NbdTransmissionFlags.Rotational, 0x0010)]
    [InlineData(NbdTransmissionFlags.SendTrim, 0x0020)]
    [InlineData(NbdTransmissionFlags.SendWriteZeroes, 0x0040)]
    [InlineData(NbdTransmissionFlags.SendDf, 0x0080)]
    [InlineData(NbdTransmissionFlags.CanMultiConn, 0x0100)]
    public void Transmission_flag_bits_match_the_protocol(NbdTransmissionFlags flag, int bit) => Assert.Equal(bit, (int)flag);
}
