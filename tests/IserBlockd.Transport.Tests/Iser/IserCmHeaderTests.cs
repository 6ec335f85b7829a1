using IserBlockd.Transport.Iser;

namespace IserBlockd.Transport.Tests.Iser;

public sealed class IserCmHeaderTests
{
    [Fact]
    public void The_initiator_header_is_the_kernel_ib_iser_one()
    {
        // ib_iser: req_hdr.flags = ISER_ZBVA_NOT_SUP (0x80) | ISER_SEND_W_INV_NOT_SUP (0x40); rsvd[3] = 0.
        Assert.Equal(new byte[] { 0xC0, 0x00, 0x00, 0x00 }, IserCmHeader.Initiator.ToArray());
        Assert.Equal(4, IserCmHeader.Size);
    }

    [Fact]
    public void With_memory_windows_the_initiator_accepts_Send_with_Invalidate()
    {
        // ib_iser with fast registration and remote invalidation: only ISER_ZBVA_NOT_SUP.
        Assert.Equal(new byte[] { 0x80, 0x00, 0x00, 0x00 }, IserCmHeader.InitiatorWithWindows.ToArray());
    }

    [Fact]
    public void Writing_clears_the_reserved_bytes()
    {
        var buffer = new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0xEE };
        Assert.Equal(4, new IserCmHeader(IserCmFlags.ZeroBasedVirtualAddressNotSupported).WriteTo(buffer));
        Assert.Equal(new byte[] { 0x80, 0, 0, 0, 0xEE }, buffer);
        Assert.Throws<ArgumentException>(() => IserCmHeader.Initiator.WriteTo(new byte[3]));
    }

    [Theory]
    [InlineData(new byte[] { 0xC0, 0, 0, 0 }, IserCmFlags.ZeroBasedVirtualAddressNotSupported | IserCmFlags.SendWithInvalidateNotSupported)]
    [InlineData(new byte[] { 0x40, 0, 0, 0, 0, 0, 0, 0 }, IserCmFlags.SendWithInvalidateNotSupported)]
    [InlineData(new byte[] { 0x00, 0, 0, 0 }, IserCmFlags.None)]
    [InlineData(new byte[] { 0x3F, 0xFF, 0xFF, 0xFF }, IserCmFlags.None)] // reserved bits ignored on receipt
    public void Reads_the_flags_from_padded_private_data(byte[] privateData, IserCmFlags expected)
    {
        Assert.True(IserCmHeader.TryRead(privateData, out var header));
        Assert.Equal(expected, header.Flags);
    }

    [Fact]
    public void Short_private_data_carries_no_header()
    {
        Assert.False(IserCmHeader.TryRead(new byte[] { 0xC0, 0, 0 }, out _));
        Assert.False(IserCmHeader.TryRead([], out _));
    }
}
