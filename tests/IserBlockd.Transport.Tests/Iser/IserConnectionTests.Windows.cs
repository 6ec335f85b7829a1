using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.ConnectionPort;
using IserBlockd.Rdma;
using IserBlockd.Rdma.Interop;
using IserBlockd.Transport.Iser;

namespace IserBlockd.Transport.Tests.Iser;

// Remote access scoped to one command (memory windows), answer buffers of ended commands, and the ping's own resources.
public sealed partial class IserConnectionTests
{
    [Fact]
    public async Task With_windows_the_target_reaches_a_buffer_only_through_the_window_of_its_command_and_only_until_it_ends()
    {
        var rig = NewRig(windows: true);
        rig.Wire.CompleteInvalidatesAtOnce = false;
        using var owner = await rig.Device.DataBuffers.RentAsync(4096);
        var buffer = owner.Memory;
        Assert.True(RegisteredBuffer.TryGetSegment(buffer, out var segment));

        await rig.SendReadAsync(itt: 0x21, buffer);
        // The bind goes out in the same chain, right before the command.
        Assert.Equal([IbvWrOpcode.BindMemoryWindow, IbvWrOpcode.Send], rig.Wire.Posted);
        var iser = IserHeader.Read(rig.Wire.Sent[^1]);
        Assert.NotEqual(segment.RemoteKey, iser.ReadStag);
        Assert.Equal(rig.Connection.WindowKeyOf(0x21), iser.ReadStag);
        Assert.Equal(segment.Address, iser.ReadVirtualAddress);
        // The pool's own key opens nothing; the window grants only what a READ needs.
        Assert.Throws<InvalidOperationException>(() => rig.Wire.RdmaWrite(segment.RemoteKey, segment.Address, new byte[16]));
        Assert.Throws<InvalidOperationException>(() => rig.Wire.RdmaRead(iser.ReadStag, segment.Address, 16));
        Assert.Throws<InvalidOperationException>(() => rig.Wire.RdmaWrite(iser.ReadStag, segment.Address, new byte[4097]));
        var data = new byte[4096];
        Random.Shared.NextBytes(data);
        rig.Wire.RdmaWrite(iser.ReadStag, iser.ReadVirtualAddress, data);

        // The response is handed over only once the local invalidate has completed.
        rig.Wire.DeliverPdu(ScsiResponse(0x21));
        Assert.Equal(IbvWrOpcode.LocalInvalidate, rig.Wire.Posted[^1]);
        var response = rig.Connection.ReceiveHeaderAsync(default);
        await Task.Delay(50);
        Assert.False(response.IsCompleted);
        rig.Wire.CompleteInvalidates();
        Assert.Equal(IscsiOpcode.ScsiResponse, (await response.AsTask().WaitAsync(Wait)).Opcode);
        Assert.Equal(data, buffer.ToArray());
        Assert.Throws<InvalidOperationException>(() => rig.Wire.RdmaWrite(iser.ReadStag, iser.ReadVirtualAddress, data));
        Assert.Equal(0, rig.Windows!.ValidKeys);
        Assert.Equal(1, rig.Connection.LocalInvalidations);

        // The next command on the same buffer gets another key; the old one stays dead.
        await rig.SendReadAsync(itt: 0x22, buffer);
        var next = IserHeader.Read(rig.Wire.Sent[^1]);
        Assert.NotEqual(iser.ReadStag, next.ReadStag);
        Assert.Throws<InvalidOperationException>(() => rig.Wire.RdmaWrite(iser.ReadStag, iser.ReadVirtualAddress, data));
        rig.Wire.RdmaWrite(next.ReadStag, next.ReadVirtualAddress, data);
    }

    [Fact]
    public async Task With_windows_a_WRITE_window_grants_remote_read_only_and_a_Send_with_Invalidate_of_its_key_ends_it()
    {
        var rig = NewRig(windows: true);
        using var owner = await rig.Device.DataBuffers.RentAsync(65536);
        var buffer = owner.Memory;
        Random.Shared.NextBytes(buffer.Span);
        await rig.SendWriteAsync(itt: 0x31, buffer, unsolicited: 0, immediate: default);
        var iser = IserHeader.Read(rig.Wire.Sent[^1]);
        Assert.Equal(buffer.ToArray(), rig.Wire.RdmaRead(iser.WriteStag, iser.WriteVirtualAddress, buffer.Length));
        Assert.Throws<InvalidOperationException>(() => rig.Wire.RdmaWrite(iser.WriteStag, iser.WriteVirtualAddress, new byte[16]));

        rig.Wire.DeliverPdu(ScsiResponse(0x31), invalidate: iser.WriteStag);
        Assert.Equal(IscsiOpcode.ScsiResponse, (await rig.Connection.ReceiveHeaderAsync(default).AsTask().WaitAsync(Wait)).Opcode);
        Assert.DoesNotContain(IbvWrOpcode.LocalInvalidate, rig.Wire.Posted);
        Assert.Equal(1, rig.Connection.RemoteInvalidations);
        Assert.Equal(rig.Windows!.Count, rig.Connection.FreeWindows);
    }

    [Fact]
    public async Task With_windows_a_Send_with_Invalidate_of_another_key_is_not_trusted()
    {
        var rig = NewRig(windows: true);
        using var owner = await rig.Device.DataBuffers.RentAsync(4096);
        await rig.SendReadAsync(itt: 0x41, owner.Memory);
        await rig.SendReadAsync(itt: 0x42, (await rig.Device.DataBuffers.RentAsync(4096)).Memory);
        var other = rig.Connection.WindowKeyOf(0x42)!.Value;
        rig.Wire.DeliverPdu(ScsiResponse(0x41), invalidate: other);
        await rig.Connection.ReceiveHeaderAsync(default).AsTask().WaitAsync(Wait);
        Assert.Equal(1, rig.Connection.LocalInvalidations); // 0x41's own window, invalidated locally
        Assert.Equal(0, rig.Connection.RemoteInvalidations);
    }

    [Fact]
    public async Task With_windows_a_plain_buffer_goes_through_a_bounce_buffer_reached_by_a_window()
    {
        var rig = NewRig(windows: true);
        var buffer = new byte[8192];
        await rig.SendReadAsync(itt: 0x51, buffer);
        var iser = IserHeader.Read(rig.Wire.Sent[^1]);
        var data = new byte[8192];
        Random.Shared.NextBytes(data);
        rig.Wire.RdmaWrite(iser.ReadStag, iser.ReadVirtualAddress, data);
        rig.Wire.DeliverPdu(ScsiResponse(0x51));
        await rig.Connection.ReceiveHeaderAsync(default).AsTask().WaitAsync(Wait);
        Assert.Equal(data, buffer);
        Assert.Equal(1, rig.Connection.BounceTransfers);
        Assert.Equal(1, rig.Connection.LocalInvalidations);
    }

    [Fact]
    public async Task An_ended_command_returns_its_answer_buffer_and_its_window_and_a_late_answer_takes_the_reserve()
    {
        var rig = NewRig(new IserConnectionOptions { QueueDepth = 2, UnexpectedPduReserve = 2 }, windows: true);
        using var owner = await rig.Device.DataBuffers.RentAsync(4096);
        await rig.SendReadAsync(itt: 1, owner.Memory);
        await rig.SendCommandAsync(2);
        var third = rig.SendCommandAsync(3);
        await Task.Delay(50);
        Assert.False(third.IsCompleted);

        // ABORT TASK confirmed (or a LU reset): the core releases task 1, whose answer will never come.
        rig.Connection.ReleaseTask(1);
        await third.WaitAsync(Wait);
        Assert.Equal(1, rig.Connection.LocalInvalidations);
        Assert.Equal(rig.Windows!.Count, rig.Connection.FreeWindows);
        // A task without a buffer that was ended gives its answer buffer back too.
        Assert.Equal(1, rig.Connection.ReceiveCredits);
        rig.Connection.ReleaseTask(2);
        Assert.Equal(2, rig.Connection.ReceiveCredits);
        rig.Connection.ReleaseTask(2); // once only
        Assert.Equal(2, rig.Connection.ReceiveCredits);

        // A response the target had already sent for task 1 is taken as unsolicited: no credit is counted twice.
        rig.Wire.DeliverPdu(ScsiResponse(1));
        await rig.Connection.ReceiveHeaderAsync(default).AsTask().WaitAsync(Wait);
        _ = rig.Connection.ReceiveHeaderAsync(default);
        Assert.Equal(2, rig.Connection.ReceiveCredits);
        rig.Wire.DeliverPdu(ScsiResponse(3));
        await Task.Delay(10);
        Assert.Equal(2, rig.Connection.ReceiveCredits); // 3's answer buffer is the core's until the next receive
    }

    [Fact]
    public async Task A_ping_goes_out_while_the_writer_waits_for_an_answer_buffer()
    {
        var rig = NewRig(new IserConnectionOptions { QueueDepth = 2, UnexpectedPduReserve = 2 });
        await rig.SendCommandAsync(1);
        await rig.SendCommandAsync(2);
        var blocked = rig.SendCommandAsync(3); // the writer waits: both answer buffers are spoken for
        await Task.Delay(50);
        Assert.False(blocked.IsCompleted);

        var ping = rig.Connection.SendAsync(new OutboundPdu(NopOut(0x80000001)), default);
        Assert.True(ping.IsCompletedSuccessfully); // its own descriptor and answer buffer: no wait
        await rig.Connection.FlushAsync(default);
        Assert.Equal(0x80000001u, BasicHeaderSegment.GetInitiatorTaskTag(rig.Wire.Sent[^1].AsSpan(IserHeader.Length)));
        Assert.False(blocked.IsCompleted);

        // The NOP-In comes back and is received beside the waiting writer.
        rig.Wire.DeliverPdu(NopIn(itt: 0x80000001));
        Assert.Equal(IscsiOpcode.NopIn, (await rig.Connection.ReceiveHeaderAsync(default).AsTask().WaitAsync(Wait)).Opcode);
    }

    [Fact]
    public async Task A_second_ping_waits_for_an_answer_buffer_beside_the_writer()
    {
        var rig = NewRig(new IserConnectionOptions { QueueDepth = 1, UnexpectedPduReserve = 2 });
        rig.Connection.IserKeys.GetOffers(false).ToList();
        rig.Connection.IserKeys.TryAccept("MaxOutstandingUnexpectedPDUs", "2", true, out _);
        await rig.Connection.StartFullFeaturePhaseAsync(new FullFeaturePhaseContext(new(), 128), default);
        await rig.SendCommandAsync(1);
        var blocked = rig.SendCommandAsync(2);
        await rig.Connection.SendAsync(new OutboundPdu(NopOut(0x80000001)), default);
        var secondPing = rig.Connection.SendAsync(new OutboundPdu(NopOut(0x80000002)), default).AsTask();
        await Task.Delay(50);
        Assert.False(blocked.IsCompleted);
        Assert.False(secondPing.IsCompleted);
        rig.Wire.DeliverPdu(NopIn(itt: 0x80000001));
        await rig.Connection.ReceiveHeaderAsync(default).AsTask().WaitAsync(Wait);
        _ = rig.Connection.ReceiveHeaderAsync(default); // the NOP-In's buffer is posted again: the ping's answer buffer is back
        await secondPing.WaitAsync(Wait);
        Assert.False(blocked.IsCompleted);
    }
}
