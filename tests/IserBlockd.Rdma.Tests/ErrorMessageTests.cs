using IserBlockd.Rdma.Completion;
using IserBlockd.Rdma.Interop;
using IserBlockd.Primitives.Native;

namespace IserBlockd.Rdma.Tests;

public sealed class ErrorMessageTests
{
    [Fact]
    public void Errno_failures_name_the_call_the_errno_and_its_text()
    {
        var e = RdmaException.FromErrno("rdma_connect(10.0.0.1:3260)", Errno.ETIMEDOUT);
        Assert.Equal("rdma_connect(10.0.0.1:3260) failed: ETIMEDOUT: Connection timed out", e.Message);
        Assert.Equal(Errno.ETIMEDOUT, e.ErrorCode);
        Assert.IsAssignableFrom<IOException>(e);
    }

    [Theory]
    [InlineData("rdma_create_event_channel", Errno.ENODEV)]
    [InlineData("ibv_get_device_list", Errno.ENOSYS)]
    [InlineData("rdma_create_id", Errno.ENODEV)]
    public void No_device_becomes_RdmaUnavailable_with_a_hint(string call, int errno)
    {
        var e = Assert.IsType<RdmaUnavailableException>(RdmaException.FromErrno(call, errno));
        Assert.Contains("no RDMA device on this host", e.Message);
        Assert.StartsWith($"{call} failed: {Errno.Name(errno)}", e.Message);
    }

    [Fact]
    public void Hints_for_memory_locking_routing_and_permissions()
    {
        Assert.Contains("RLIMIT_MEMLOCK", RdmaException.FromErrno("ibv_reg_mr(1048576 bytes)", Errno.ENOMEM).Message);
        var route = RdmaException.FromErrno("rdma_resolve_addr(10.0.0.1:3260)", Errno.EADDRNOTAVAIL);
        Assert.IsNotType<RdmaUnavailableException>(route);
        Assert.Contains("no RDMA device routes to this address", route.Message);
        Assert.Contains("run as root", RdmaException.FromErrno("rdma_create_event_channel", Errno.EACCES).Message);
    }

    [Fact]
    public void Unknown_errno_values_still_read_well()
    {
        Assert.Equal("errno 200", Errno.Name(200));
        Assert.StartsWith("x failed: errno 200: ", RdmaException.FromErrno("x", 200).Message);
    }

    [Fact]
    public void Cm_event_statuses_are_explained()
    {
        Assert.Equal("RDMA_CM_EVENT_ADDR_ERROR", RdmaCmEvent.Name(RdmaCmEventType.AddressError));
        Assert.Equal("ETIMEDOUT: Connection timed out", RdmaCmEvent.DescribeStatus(RdmaCmEventType.AddressError, -110));
        Assert.Equal("reject reason 8: invalid service ID - nothing listens on that port",
            RdmaCmEvent.DescribeStatus(RdmaCmEventType.Rejected, 8));
        Assert.Equal("reject reason 28: rejected by the peer application", RdmaCmEvent.DescribeStatus(RdmaCmEventType.Rejected, 28));
        Assert.Equal("reject reason 99", RdmaCmEvent.DescribeStatus(RdmaCmEventType.Rejected, 99));
    }

    [Fact]
    public void Rejections_keep_the_reason_and_private_data()
    {
        var e = new RdmaConnectionRejectedException("rdma_connect: rejected", 28, new byte[] { 1, 2 });
        Assert.Equal(RdmaCmEventType.Rejected, e.EventType);
        Assert.Equal(28, e.RejectReason);
        Assert.Equal(0, e.ErrorCode); // a reject reason is not an errno
        Assert.Equal(new byte[] { 1, 2 }, e.PrivateData.ToArray());
        var timeout = new RdmaConnectionException("x", RdmaCmEventType.Unreachable, -110);
        Assert.Equal(Errno.ETIMEDOUT, timeout.ErrorCode);
    }

    [Theory]
    [InlineData(IbvWcStatus.RemoteAccessError, "remote access error: the peer refused the rkey/address range")]
    [InlineData(IbvWcStatus.RetryExceededError, "transport retry counter exceeded: the peer stopped answering")]
    [InlineData(IbvWcStatus.LocalLengthError, "local length error: the message is longer than the posted receive buffer")]
    [InlineData(IbvWcStatus.RemoteAbortError, "aborted error")] // from rdma-core's ibv_wc_status_str
    public void Work_completion_statuses_are_explained(IbvWcStatus status, string text)
    {
        Assert.Equal(text, WorkCompletionException.Describe(status));
    }

    [Fact]
    public void Successful_completions_do_not_throw()
    {
        WorkCompletionException.ThrowIfFailed(new IbvWc { Status = IbvWcStatus.Success }, "SEND");
        var e = Assert.Throws<WorkCompletionException>(() =>
            WorkCompletionException.ThrowIfFailed(new IbvWc { Status = IbvWcStatus.RnrRetryExceededError, VendorError = 0x81 }, "SEND of a SCSI command"));
        Assert.Equal("SEND of a SCSI command failed: receiver-not-ready retry counter exceeded: the peer posted no receive buffer (vendor error 0x81)", e.Message);
    }
}
