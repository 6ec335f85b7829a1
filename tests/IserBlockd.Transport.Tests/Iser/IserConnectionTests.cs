using System.Buffers.Binary;
using IserBlockd.Iscsi;
using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.ConnectionPort;
using IserBlockd.Rdma;
using IserBlockd.Transport.Iser;
using Microsoft.Extensions.Logging.Abstractions;

namespace IserBlockd.Transport.Tests.Iser;

/// <summary>
/// The iSER connection's protocol logic on an in-memory queue pair (<see cref="FakeWire"/>) that plays the target:
/// framing, posted receives, send credits, tagged buffers (registered in place, bounce, one-off registration),
/// completion to PDU dispatch, failures and teardown.
/// </summary>
public sealed partial class IserConnectionTests : IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private readonly List<Rig> _rigs = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var rig in _rigs) await rig.DisposeAsync();
    }

    private Rig NewRig(IserConnectionOptions? options = null, bool windows = false)
    {
        var rig = new Rig(options ?? new IserConnectionOptions(), windows);
        _rigs.Add(rig);
        return rig;
    }

    // ---------------------------------------------------------------- receive buffers and framing

    [Fact]
    public void Every_receive_buffer_is_posted_before_connecting()
    {
        var rig = NewRig(new IserConnectionOptions { QueueDepth = 16, UnexpectedPduReserve = 4 });
        Assert.Equal(21, rig.Wire.PostedReceives); // 16 answers, 4 in reserve, 1 for our ping
        Assert.Equal(21, rig.Connection.PostedReceives);
        Assert.Equal(17, rig.Connection.ReceiveCredits);
        Assert.Equal(IscsiTransportCapabilities.PlacesScsiData | IscsiTransportCapabilities.ConcurrentPing, rig.Connection.Capabilities);
        Assert.Same(rig.Connection.IserKeys, rig.Connection.LoginKeys);
    }

    [Fact]
    public async Task A_PDU_goes_out_as_one_Send_behind_the_control_header_and_only_when_flushed()
    {
        var rig = NewRig();
        var data = "hello"u8.ToArray();
        await rig.Connection.SendAsync(new OutboundPdu(NopOut(itt: 7, dataLength: data.Length), data), default);
        Assert.Empty(rig.Wire.Sent);
        await rig.Connection.FlushAsync(default);
        var message = Assert.Single(rig.Wire.Sent);
        Assert.Equal(IserHeader.Length + BasicHeaderSegment.Length + data.Length, message.Length);
        Assert.Equal(Convert.FromHexString("10000000" + new string('0', 48)), message[..IserHeader.Length]);
        Assert.Equal(NopOut(itt: 7, dataLength: data.Length), message[IserHeader.Length..(IserHeader.Length + 48)]);
        Assert.Equal(data, message[(IserHeader.Length + 48)..]);
        Assert.Equal(1, rig.Connection.PdusSent);
    }

    [Fact]
    public async Task Sends_queued_together_are_posted_with_one_doorbell()
    {
        var rig = NewRig();
        for (uint i = 1; i <= 5; i++) await rig.Connection.SendAsync(new OutboundPdu(NopOut(i)), default);
        await rig.Connection.FlushAsync(default);
        Assert.Equal(1, rig.Wire.SendPosts);
        Assert.Equal(5, rig.Wire.Sent.Count);
        Assert.Equal([1u, 2, 3, 4, 5], rig.Wire.Sent.Select(m => BinaryPrimitives.ReadUInt32BigEndian(m.AsSpan(IserHeader.Length + 16))));
    }

    [Fact]
    public async Task A_received_PDU_is_handed_over_in_place_and_its_buffer_posted_again_after_use()
    {
        var rig = NewRig(new IserConnectionOptions { QueueDepth = 8, UnexpectedPduReserve = 2 });
        var data = "pong"u8.ToArray();
        rig.Wire.DeliverPdu(NopIn(itt: 9, dataLength: data.Length), data);
        Assert.Equal(10, rig.Wire.PostedReceives);

        var pdu = await rig.Connection.ReceiveHeaderAsync(default);
        Assert.Equal(IscsiOpcode.NopIn, pdu.Opcode);
        Assert.Equal(9u, pdu.InitiatorTaskTag);
        Assert.Equal(data.Length, pdu.DataSegmentLength);
        Assert.Equal(NopIn(itt: 9, dataLength: data.Length), pdu.Header.ToArray());
        Assert.Equal(data, (await rig.Connection.ReceiveDataAsync(default, default)).ToArray());
        var copy = new byte[data.Length];
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await rig.Connection.ReceiveDataAsync(copy, default));
        Assert.Equal(10, rig.Wire.PostedReceives); // still in use by the core

        var next = rig.Connection.ReceiveHeaderAsync(default);
        Assert.False(next.IsCompleted);
        Assert.Equal(11, rig.Wire.PostedReceives); // the previous one is posted again first
        rig.Wire.DeliverPdu(NopIn(itt: 10));
        Assert.Equal(10u, (await next.AsTask().WaitAsync(Wait)).InitiatorTaskTag);
        Assert.Equal(2, rig.Connection.PdusReceived);
    }

    [Fact]
    public async Task Data_lands_in_the_destination_the_core_gives()
    {
        var rig = NewRig();
        var sense = new byte[] { 0, 4, 0x70, 0, 6, 0 };
        rig.Wire.DeliverPdu(ScsiResponse(itt: 3, dataLength: sense.Length), sense);
        var pdu = await rig.Connection.ReceiveHeaderAsync(default);
        var destination = new byte[pdu.DataSegmentLength];
        var got = await rig.Connection.ReceiveDataAsync(destination, default);
        Assert.Equal(sense, destination);
        Assert.True(got.Span.SequenceEqual(sense));
    }

    [Fact]
    public async Task PDUs_arrive_in_order()
    {
        var rig = NewRig();
        for (uint i = 1; i <= 20; i++) rig.Wire.DeliverPdu(ScsiResponse(i));
        for (uint i = 1; i <= 20; i++) Assert.Equal(i, (await rig.Connection.ReceiveHeaderAsync(default)).InitiatorTaskTag);
    }

    // ---------------------------------------------------------------- tagged buffers

    [Fact]
    public async Task A_registered_task_buffer_is_advertised_in_place_and_the_target_writes_straight_into_it()
    {
        var rig = NewRig();
        using var owner = await rig.Device.DataBuffers.RentAsync(4096);
        var buffer = owner.Memory;
        Assert.True(RegisteredBuffer.TryGetSegment(buffer, out var segment));

        await rig.SendReadAsync(itt: 0x11, buffer);
        var iser = IserHeader.Read(rig.Wire.Sent[^1]);
        Assert.Equal(IserHeaderFlags.IscsiControl | IserHeaderFlags.ReadValid, iser.Flags);
        Assert.Equal(segment.RemoteKey, iser.ReadStag);
        Assert.Equal(segment.Address, iser.ReadVirtualAddress);
        Assert.Equal(1, rig.Connection.RegisteredTransfers);
        Assert.Equal(0, rig.Connection.BounceTransfers);

        var data = new byte[4096];
        Random.Shared.NextBytes(data);
        rig.Wire.RdmaWrite(iser.ReadStag, iser.ReadVirtualAddress, data);
        rig.Wire.DeliverPdu(ScsiResponse(0x11));
        await rig.Connection.ReceiveHeaderAsync(default);
        Assert.Equal(data, buffer.ToArray());
    }

    [Fact]
    public async Task The_write_VA_skips_what_the_core_sends_unsolicited()
    {
        var rig = NewRig();
        using var owner = await rig.Device.DataBuffers.RentAsync(65536);
        RegisteredBuffer.TryGetSegment(owner.Memory, out var segment);
        await rig.SendWriteAsync(itt: 0x12, owner.Memory, unsolicited: 8192, immediate: owner.Memory[..8192]);
        var message = rig.Wire.Sent[^1];
        var iser = IserHeader.Read(message);
        Assert.Equal(IserHeaderFlags.IscsiControl | IserHeaderFlags.WriteValid, iser.Flags);
        Assert.Equal(segment.RemoteKey, iser.WriteStag);
        Assert.Equal(segment.Address + 8192, iser.WriteVirtualAddress);
        Assert.Equal(IserHeader.Length + 48 + 8192, message.Length); // the immediate data travels in the Send
    }

    [Fact]
    public async Task A_fully_unsolicited_write_advertises_no_write_buffer()
    {
        var rig = NewRig();
        using var owner = await rig.Device.DataBuffers.RentAsync(4096);
        await rig.SendWriteAsync(itt: 0x13, owner.Memory, unsolicited: 4096, immediate: owner.Memory);
        Assert.Equal(IserHeaderFlags.IscsiControl, IserHeader.Read(rig.Wire.Sent[^1]).Flags);
    }

    [Fact]
    public async Task A_plain_READ_buffer_goes_through_a_bounce_buffer_copied_out_at_the_response()
    {
        var rig = NewRig();
        var buffer = new byte[8192];
        await rig.SendReadAsync(itt: 0x21, buffer);
        var iser = IserHeader.Read(rig.Wire.Sent[^1]);
        Assert.True(iser.HasRead);
        Assert.Equal(1, rig.Connection.BounceTransfers);
        Assert.Equal(1, rig.Device.BounceBuffers.RentedCount);

        var data = Enumerable.Range(0, 8192).Select(i => (byte)(i * 7)).ToArray();
        rig.Wire.RdmaWrite(iser.ReadStag, iser.ReadVirtualAddress, data);
        ByteAssert.All(buffer, 0); // not yet: the data sits in the bounce buffer
        rig.Wire.DeliverPdu(ScsiResponse(0x21));
        await rig.Connection.ReceiveHeaderAsync(default);
        Assert.Equal(data, buffer);
        Assert.Equal(0, rig.Device.BounceBuffers.RentedCount);
        rig.Connection.ReleaseTask(0x21); // the core's release after completion: nothing left to do
        Assert.Equal(0, rig.Device.BounceBuffers.RentedCount);
    }

    [Fact]
    public async Task A_plain_WRITE_buffer_is_copied_into_a_bounce_buffer_the_target_reads()
    {
        var rig = NewRig();
        var source = Enumerable.Range(0, 16384).Select(i => (byte)(i ^ 0x5a)).ToArray();
        await rig.SendWriteAsync(itt: 0x22, source, unsolicited: 0, immediate: default);
        var iser = IserHeader.Read(rig.Wire.Sent[^1]);
        Assert.True(iser.HasWrite);
        Assert.Equal(source, rig.Wire.RdmaRead(iser.WriteStag, iser.WriteVirtualAddress, source.Length));
        rig.Wire.DeliverPdu(ScsiResponse(0x22));
        await rig.Connection.ReceiveHeaderAsync(default);
        Assert.Equal(0, rig.Device.BounceBuffers.RentedCount);
    }

    [Fact]
    public async Task A_plain_buffer_larger_than_any_bounce_buffer_is_registered_for_its_command()
    {
        var rig = NewRig();
        var source = Enumerable.Range(0, 200_000).Select(i => (byte)i).ToArray();
        var before = rig.Registrar.Live;
        await rig.SendWriteAsync(itt: 0x23, source, unsolicited: 0, immediate: default);
        Assert.Equal(1, rig.Connection.PinnedTransfers);
        Assert.Equal(before + 1, rig.Registrar.Live);
        var iser = IserHeader.Read(rig.Wire.Sent[^1]);
        Assert.Equal(source, rig.Wire.RdmaRead(iser.WriteStag, iser.WriteVirtualAddress, source.Length));
        rig.Wire.DeliverPdu(ScsiResponse(0x23));
        await rig.Connection.ReceiveHeaderAsync(default);
        Assert.Equal(before, rig.Registrar.Live); // deregistered at the response
    }

    [Fact]
    public async Task A_released_task_gives_its_bounce_buffer_back_without_touching_the_task_buffer()
    {
        var rig = NewRig();
        var buffer = new byte[4096];
        await rig.SendReadAsync(itt: 0x24, buffer);
        var iser = IserHeader.Read(rig.Wire.Sent[^1]);
        rig.Wire.RdmaWrite(iser.ReadStag, iser.ReadVirtualAddress, Enumerable.Repeat((byte)0xff, 4096).ToArray());
        rig.Connection.ReleaseTask(0x24); // aborted: no SCSI Response will come
        Assert.Equal(0, rig.Device.BounceBuffers.RentedCount);
        ByteAssert.All(buffer, 0);
    }

    [Fact]
    public async Task Memory_registered_on_another_protection_domain_is_never_advertised()
    {
        var rig = NewRig();
        var other = NewRig(); // another device: its pool's keys mean nothing to this connection's target
        using var owner = await other.Device.DataBuffers.RentAsync(4096);
        await rig.SendReadAsync(itt: 0x25, owner.Memory);
        Assert.Equal(0, rig.Connection.RegisteredTransfers);
        Assert.Equal(1, rig.Connection.BounceTransfers);
    }

    // ---------------------------------------------------------------- flow control

    [Fact]
    public async Task A_request_waits_until_a_posted_receive_buffer_is_free_for_its_answer()
    {
        var rig = NewRig(new IserConnectionOptions { QueueDepth = 2, UnexpectedPduReserve = 2 });
        await rig.SendCommandAsync(1);
        await rig.SendCommandAsync(2);
        var third = rig.SendCommandAsync(3);
        await Task.Delay(50);
        Assert.False(third.IsCompleted);
        Assert.Equal(2, rig.Wire.Sent.Count); // the waiting sender flushed what it had queued

        rig.Wire.DeliverPdu(ScsiResponse(1));
        await rig.Connection.ReceiveHeaderAsync(default);
        await Task.Delay(50);
        Assert.False(third.IsCompleted); // the answer's buffer is still the core's
        var next = rig.Connection.ReceiveHeaderAsync(default); // ... until it asks for the next PDU
        await third.WaitAsync(Wait);
        await rig.Connection.FlushAsync(default);
        Assert.Equal(3, rig.Wire.Sent.Count);
        Assert.False(next.IsCompleted);
        Assert.Equal(1, rig.Connection.SendStalls);
    }

    [Fact]
    public async Task Unsolicited_PDUs_use_the_reserve_not_the_answers_buffers()
    {
        var rig = NewRig(new IserConnectionOptions { QueueDepth = 2, UnexpectedPduReserve = 2 });
        rig.Wire.DeliverPdu(NopIn(itt: 0xffffffff, ttt: 0xffffffff));
        rig.Wire.DeliverPdu(AsyncMessage());
        Assert.Equal(3, rig.Connection.ReceiveCredits);
        await rig.SendCommandAsync(1).WaitAsync(Wait);
        await rig.SendCommandAsync(2).WaitAsync(Wait);
        Assert.Equal(1, rig.Connection.ReceiveCredits); // the ping's
        Assert.Equal(IscsiOpcode.NopIn, (await rig.Connection.ReceiveHeaderAsync(default)).Opcode);
        Assert.Equal(IscsiOpcode.AsyncMessage, (await rig.Connection.ReceiveHeaderAsync(default)).Opcode);
        _ = rig.Connection.ReceiveHeaderAsync(default); // posts the async message's buffer again
        Assert.Equal(1, rig.Connection.ReceiveCredits); // the reserve refilled, no credit for more commands
        Assert.Equal(5, rig.Wire.PostedReceives); // all posted again: two for the commands' answers, two in reserve, the ping's
    }

    [Fact]
    public async Task Sends_never_outnumber_the_send_queue()
    {
        var rig = NewRig(new IserConnectionOptions { SendQueueDepth = 2, PostBatch = 1 });
        rig.Wire.CompleteSendsAtOnce = false;
        await rig.Connection.SendAsync(new OutboundPdu(NopOut(1)), default);
        await rig.Connection.SendAsync(new OutboundPdu(NopOut(2)), default);
        var third = rig.Connection.SendAsync(new OutboundPdu(NopOut(3)), default).AsTask();
        await Task.Delay(50);
        Assert.False(third.IsCompleted);
        Assert.Equal(0, rig.Connection.FreeSendDescriptors);
        rig.Wire.CompleteSends(1);
        await third.WaitAsync(Wait);
        Assert.Equal(3, rig.Wire.Sent.Count);
    }

    [Fact]
    public async Task Control_requests_respect_the_targets_MaxOutstandingUnexpectedPDUs()
    {
        var rig = NewRig();
        rig.Connection.IserKeys.GetOffers(false).ToList();
        rig.Connection.IserKeys.TryAccept("MaxOutstandingUnexpectedPDUs", "2", true, out _);
        await rig.Connection.StartFullFeaturePhaseAsync(new FullFeaturePhaseContext(new(), 128), default);
        await rig.Connection.SendAsync(new OutboundPdu(NopOut(1)), default);
        await rig.Connection.SendAsync(new OutboundPdu(NopOut(2)), default);
        var third = rig.Connection.SendAsync(new OutboundPdu(NopOut(3)), default).AsTask();
        await Task.Delay(50);
        Assert.False(third.IsCompleted);
        Assert.Equal(2, rig.Connection.OutstandingControlRequests);
        // A NOP-Out answering the target's ping (reserved ITT) is not limited.
        rig.Wire.DeliverPdu(NopIn(itt: 1));
        await third.WaitAsync(Wait);
        Assert.Equal(2, rig.Connection.OutstandingControlRequests);
    }

    // ---------------------------------------------------------------- failures and teardown

    [Fact]
    public async Task A_truncated_PDU_fails_the_connection_with_a_clear_reason()
    {
        var rig = NewRig();
        var bhs = ScsiResponse(1, dataLength: 100);
        rig.Wire.DeliverPdu(bhs, new byte[10]);
        var e = await Assert.ThrowsAsync<IscsiProtocolException>(async () => await rig.Connection.ReceiveHeaderAsync(default));
        Assert.Contains("truncated ScsiResponse PDU", e.Message);
        await Assert.ThrowsAsync<IscsiProtocolException>(async () => await rig.Connection.SendAsync(new OutboundPdu(NopOut(1)), default));
    }

    [Fact]
    public async Task An_iSER_Hello_from_the_target_is_refused()
    {
        var rig = NewRig();
        rig.Wire.DeliverPdu(NopIn(1), iserFlags: 0x20);
        var e = await Assert.ThrowsAsync<IscsiProtocolException>(async () => await rig.Connection.ReceiveHeaderAsync(default));
        Assert.Contains("iSER Hello", e.Message);
    }

    [Fact]
    public async Task A_message_shorter_than_the_headers_is_refused()
    {
        var rig = NewRig();
        rig.Wire.Deliver(new byte[40]);
        var e = await Assert.ThrowsAsync<IscsiProtocolException>(async () => await rig.Connection.ReceiveHeaderAsync(default));
        Assert.Contains("40-byte message", e.Message);
    }

    [Fact]
    public async Task What_arrived_before_a_disconnect_is_still_delivered_then_the_receive_fails()
    {
        var rig = NewRig();
        rig.Wire.DeliverPdu(LogoutResponse(5));
        var waiting = rig.Connection.SendAsync(new OutboundPdu(NopOut(6)), default);
        rig.Wire.FlushAll();
        Assert.Equal(IscsiOpcode.LogoutResponse, (await rig.Connection.ReceiveHeaderAsync(default)).Opcode);
        var e = await Assert.ThrowsAsync<IscsiTransportException>(async () => await rig.Connection.ReceiveHeaderAsync(default));
        Assert.Contains("closed", e.Message);
        await Assert.ThrowsAsync<IscsiTransportException>(async () => await rig.Connection.SendAsync(new OutboundPdu(NopOut(7)), default));
        await waiting; // queued before the failure
    }

    [Fact]
    public async Task A_receive_waiting_when_the_connection_fails_is_woken_with_the_reason()
    {
        var rig = NewRig();
        var receive = rig.Connection.ReceiveHeaderAsync(default).AsTask();
        rig.Connection.OnConnectionLost("the target closed the RDMA connection (RDMA_CM_EVENT_DISCONNECTED)");
        var e = await Assert.ThrowsAsync<IscsiTransportException>(() => receive.WaitAsync(Wait));
        Assert.Contains("RDMA_CM_EVENT_DISCONNECTED", e.Message);
    }

    [Fact]
    public async Task A_waiting_receive_honours_cancellation()
    {
        var rig = NewRig();
        using var cts = new CancellationTokenSource();
        var receive = rig.Connection.ReceiveHeaderAsync(cts.Token).AsTask();
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => receive.WaitAsync(Wait));
        rig.Wire.DeliverPdu(NopIn(3));
        Assert.Equal(3u, (await rig.Connection.ReceiveHeaderAsync(default)).InitiatorTaskTag);
    }

    [Fact]
    public async Task A_failed_post_fails_the_connection()
    {
        var rig = NewRig();
        await rig.Connection.SendAsync(new OutboundPdu(NopOut(1)), default);
        rig.Wire.PostErrno = 22;
        var e = await Assert.ThrowsAsync<IscsiTransportException>(async () => await rig.Connection.FlushAsync(default));
        Assert.Contains("EINVAL", e.Message);
    }

    [Fact]
    public async Task Teardown_disconnects_drains_destroys_and_gives_back_every_buffer_once()
    {
        var rig = NewRig();
        await rig.SendReadAsync(itt: 0x31, new byte[4096]);
        Assert.Equal(1, rig.Device.BounceBuffers.RentedCount);
        var descriptorRegistrations = rig.Registrar.Registrations.Where(r => !r.Disposed).ToList();

        var first = rig.Connection.DisposeAsync().AsTask();
        var second = rig.Connection.DisposeAsync().AsTask();
        await Task.WhenAll(first, second).WaitAsync(Wait);
        Assert.True(rig.Wire.Disconnected);
        Assert.True(rig.Wire.Destroyed);
        Assert.Equal(0, rig.Connection.PostedReceives); // every receive came back flushed
        Assert.Equal(0, rig.Device.BounceBuffers.RentedCount);
        rig.Connection.ReleaseTask(0x31); // late release from the core: no double return
        Assert.Equal(0, rig.Device.BounceBuffers.RentedCount);
        // Only the device's pools stay registered: the descriptor region is gone.
        Assert.Equal(descriptorRegistrations.Count - 1, descriptorRegistrations.Count(r => !r.Disposed));
        await Assert.ThrowsAsync<IscsiTransportException>(async () => await rig.Connection.ReceiveHeaderAsync(default));
    }

    [Fact]
    public async Task Teardown_while_the_core_still_reads_a_header_keeps_the_memory_until_it_is_done()
    {
        var rig = NewRig();
        rig.Wire.DeliverPdu(ScsiResponse(1, dataLength: 4), [1, 2, 3, 4]);
        var pdu = await rig.Connection.ReceiveHeaderAsync(default);
        await rig.Connection.DisposeAsync();
        // The core may finish the PDU it holds: header and data are still readable.
        Assert.Equal(1u, pdu.InitiatorTaskTag);
        Assert.Equal(new byte[] { 1, 2, 3, 4 }, (await rig.Connection.ReceiveDataAsync(default, default)).ToArray());
        await Assert.ThrowsAsync<IscsiTransportException>(async () => await rig.Connection.ReceiveHeaderAsync(default));
    }

    // ---------------------------------------------------------------- allocation

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Steady_state_command_and_response_allocate_nothing(bool windows)
    {
        var rig = NewRig(windows: windows);
        rig.Wire.RecordSends = false;
        using var owner = await rig.Device.DataBuffers.RentAsync(4096);
        var header = new byte[48];
        var response = new byte[IserHeader.Length + 48];
        response[0] = 0x10;
        var task = new ScsiTaskData(1, owner.Memory, 4096, 0, 0);

        void Cycle()
        {
            new ScsiCommandPdu { Final = true, Read = true, InitiatorTaskTag = 1, ExpectedDataTransferLength = 4096, Cdb = Cdb }.WriteHeader(header);
            var send = rig.Connection.SendAsync(new OutboundPdu(header, default, task), default);
            if (!send.IsCompletedSuccessfully) throw new InvalidOperationException("send did not complete at once");
            send.GetAwaiter().GetResult();
            var flush = rig.Connection.FlushAsync(default);
            flush.GetAwaiter().GetResult();
            new ScsiResponsePdu { InitiatorTaskTag = 1 }.Write(response.AsSpan(IserHeader.Length));
            rig.Wire.Deliver(response);
            var receive = rig.Connection.ReceiveHeaderAsync(default);
            if (!receive.IsCompletedSuccessfully) throw new InvalidOperationException("receive did not complete at once");
            receive.GetAwaiter().GetResult();
        }

        for (var i = 0; i < 200; i++) Cycle();
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 2000; i++) Cycle();
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 2000, $"{allocated} bytes allocated over 2000 commands");
    }

    // ---------------------------------------------------------------- helpers

    private static readonly byte[] Cdb = new byte[16];

    private static byte[] NopOut(uint itt, int dataLength = 0)
    {
        var bhs = new byte[48];
        new NopOutPdu { Immediate = true, InitiatorTaskTag = itt, TargetTransferTag = 0xffffffff, DataSegmentLength = dataLength }.Write(bhs);
        return bhs;
    }

    private static byte[] NopIn(uint itt, int dataLength = 0, uint ttt = 0xffffffff)
    {
        var bhs = new byte[48];
        new NopInPdu { InitiatorTaskTag = itt, TargetTransferTag = ttt, DataSegmentLength = dataLength }.Write(bhs);
        return bhs;
    }

    private static byte[] ScsiResponse(uint itt, int dataLength = 0)
    {
        var bhs = new byte[48];
        new ScsiResponsePdu { InitiatorTaskTag = itt, DataSegmentLength = dataLength }.Write(bhs);
        return bhs;
    }

    private static byte[] LogoutResponse(uint itt)
    {
        var bhs = new byte[48];
        bhs[0] = (byte)IscsiOpcode.LogoutResponse;
        bhs[1] = 0x80;
        BinaryPrimitives.WriteUInt32BigEndian(bhs.AsSpan(16), itt);
        return bhs;
    }

    private static byte[] AsyncMessage()
    {
        var bhs = new byte[48];
        bhs[0] = (byte)IscsiOpcode.AsyncMessage;
        bhs[1] = 0x80;
        BinaryPrimitives.WriteUInt32BigEndian(bhs.AsSpan(16), 0xffffffff);
        return bhs;
    }

    private sealed class Rig : IAsyncDisposable
    {
        public Rig(IserConnectionOptions options, bool windows = false)
        {
            // With windows the registrations grant no remote access: only a window bound for a command does.
            Registrar.RemoteAccess = !windows;
            Device = new IserDevice("fake0", Registrar, Registrar, new IserDeviceOptions
            {
                DataBuffers = new RegisteredBufferPoolOptions { SizeClasses = [new(4096, 8), new(65536, 4)] },
                BounceBuffers = new RegisteredBufferPoolOptions { SizeClasses = [new(65536, 2)] },
            }, windows: windows ? count => Windows = new FakeWindows(count) : null);
            Wire = new FakeWire(Registrar);
            Connection = new IserConnection(Wire, Registrar, Device, options, NullLogger.Instance);
            Wire.Connection = Connection;
            Wire.Windows = Windows;
            Connection.PostAllReceives();
        }

        public FakeWindows? Windows { get; private set; }

        public FakeRegistrar Registrar { get; } = new();
        public IserDevice Device { get; }
        public FakeWire Wire { get; }
        public IserConnection Connection { get; }

        public async Task SendCommandAsync(uint itt)
        {
            var bhs = new byte[48];
            new ScsiCommandPdu { Final = true, InitiatorTaskTag = itt, Cdb = Cdb }.WriteHeader(bhs);
            await Connection.SendAsync(new OutboundPdu(bhs), default);
        }

        public async Task SendReadAsync(uint itt, Memory<byte> buffer)
        {
            var bhs = new byte[48];
            new ScsiCommandPdu { Final = true, Read = true, InitiatorTaskTag = itt, ExpectedDataTransferLength = (uint)buffer.Length, Cdb = Cdb }.WriteHeader(bhs);
            await Connection.SendAsync(new OutboundPdu(bhs, default, new ScsiTaskData(itt, buffer, buffer.Length, 0, 0)), default);
            await Connection.FlushAsync(default);
        }

        public async Task SendWriteAsync(uint itt, Memory<byte> buffer, int unsolicited, ReadOnlyMemory<byte> immediate)
        {
            var bhs = new byte[48];
            new ScsiCommandPdu
            {
                Final = true, Write = true, InitiatorTaskTag = itt, ExpectedDataTransferLength = (uint)buffer.Length,
                DataSegmentLength = immediate.Length, Cdb = Cdb,
            }.WriteHeader(bhs);
            await Connection.SendAsync(new OutboundPdu(bhs, immediate, new ScsiTaskData(itt, buffer, 0, buffer.Length, unsolicited)), default);
            await Connection.FlushAsync(default);
        }

        public async ValueTask DisposeAsync()
        {
            await Connection.DisposeAsync();
            Device.Dispose();
        }
    }
}
