using IserBlockd.Transport.Iser;

namespace IserBlockd.Transport.Tests.Iser;

/// <summary>
/// The 28-byte iSER header (RFC 7145 §9.2) against byte vectors laid out as the kernel's <c>struct iser_ctrl</c> and
/// tgt's <c>struct iser_hdr</c>: u8 flags, u8 rsvd[3], __be32 write_stag, __be64 write_va, __be32 read_stag, __be64 read_va.
/// </summary>
public class IserHeaderTests
{
    [Fact]
    public void Control_header_is_flag_0x10_and_zeros()
    {
        var bytes = new byte[IserHeader.Length];
        bytes.AsSpan().Fill(0xee);
        IserHeader.Control.Write(bytes);
        Assert.Equal(Convert.FromHexString("10000000" + "00000000" + "0000000000000000" + "00000000" + "0000000000000000"), bytes);
    }

    [Fact]
    public void Read_and_write_command_carries_both_tagged_buffers_big_endian()
    {
        var header = IserHeader.ForCommand(0x12345678, 0x00007f0011223344 + 512, write: true, 0x9abcdef0, 0x00007f0011223344, read: true);
        var bytes = new byte[IserHeader.Length];
        header.Write(bytes);
        Assert.Equal(Convert.FromHexString("1c000000" + "12345678" + "00007f0011223544" + "9abcdef0" + "00007f0011223344"), bytes);
        Assert.Equal(IserHeaderFlags.IscsiControl, header.Opcode);
        Assert.True(header.HasWrite);
        Assert.True(header.HasRead);
    }

    [Fact]
    public void Read_only_command_sets_RSV_and_leaves_the_write_fields_zero()
    {
        var header = IserHeader.ForCommand(0x11, 0x2222, write: false, 0x00c0ffee, 0x0000_5555_0000_1000, read: true);
        var bytes = new byte[IserHeader.Length];
        header.Write(bytes);
        Assert.Equal(Convert.FromHexString("14000000" + "00000000" + "0000000000000000" + "00c0ffee" + "0000555500001000"), bytes);
    }

    [Fact]
    public void Write_only_command_sets_WSV()
    {
        var bytes = new byte[IserHeader.Length];
        IserHeader.ForCommand(0xa1b2c3d4, 0x0102030405060708, write: true, 0, 0, read: false).Write(bytes);
        Assert.Equal(Convert.FromHexString("18000000" + "a1b2c3d4" + "0102030405060708" + "00000000" + "0000000000000000"), bytes);
    }

    [Fact]
    public void Reading_ignores_the_reserved_bytes_and_round_trips()
    {
        var bytes = Convert.FromHexString("1cffffff" + "00000042" + "0000000000001000" + "00000043" + "0000000000002000");
        var header = IserHeader.Read(bytes);
        Assert.Equal(new IserHeader(IserHeaderFlags.IscsiControl | IserHeaderFlags.WriteValid | IserHeaderFlags.ReadValid, 0x42, 0x1000, 0x43, 0x2000), header);
        var again = new byte[IserHeader.Length];
        header.Write(again);
        Assert.Equal(Convert.FromHexString("1c000000" + "00000042" + "0000000000001000" + "00000043" + "0000000000002000"), again);
    }

    [Theory]
    [InlineData(0x10, IserHeaderFlags.IscsiControl, "iSCSI control")]
    [InlineData(0x20, IserHeaderFlags.Hello, "iSER Hello")]
    [InlineData(0x30, IserHeaderFlags.HelloReply, "iSER HelloReply")]
    public void The_high_nibble_is_the_iSER_opcode(byte flags, IserHeaderFlags opcode, string text)
    {
        var bytes = new byte[IserHeader.Length];
        bytes[0] = (byte)(flags | 0x0c);
        var header = IserHeader.Read(bytes);
        Assert.Equal(opcode, header.Opcode);
        Assert.StartsWith(text, header.ToString());
    }

    [Fact]
    public void Short_buffers_are_refused()
    {
        Assert.Throws<ArgumentException>(() => IserHeader.Read(new byte[27]));
        Assert.Throws<ArgumentException>(() => IserHeader.Control.Write(new byte[27]));
    }
}
