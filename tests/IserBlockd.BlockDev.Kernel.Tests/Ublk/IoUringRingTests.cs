using System.Diagnostics;
using IserBlockd.BlockDev.Kernel.IoUring;
using IserBlockd.Primitives.Native;

namespace IserBlockd.BlockDev.Kernel.Tests.Ublk;

/// <summary>Our io_uring bindings against the host kernel: real submissions and completions.</summary>
public unsafe class IoUringRingTests
{
    [Theory]
    [InlineData(IoUringSetupFlags.None, 64)]
    [InlineData(IoUringSetupFlags.Sqe128, 128)]
    [InlineData(IoUringSetupFlags.CoopTaskRun | IoUringSetupFlags.SingleIssuer, 64)]
    public void Nops_come_back_with_their_user_data(IoUringSetupFlags flags, int sqeSize)
    {
        using var ring = IoUringRing.Create(8, flags);
        Assert.Equal(8u, ring.SqEntries);
        Assert.Equal(sqeSize, ring.SqeSize);
        // more than the ring holds at once, in three rounds, so the ring wraps around
        var seen = new HashSet<ulong>();
        for (var round = 0; round < 3; round++)
        {
            for (var i = 0; i < 8; i++)
            {
                var sqe = ring.TryGetSqe();
                Assert.True(sqe != null);
                sqe->Opcode = IoUringOpcode.Nop;
                sqe->UserData = (ulong)(round * 100 + i);
            }
            Assert.True(ring.TryGetSqe() == null);   // full until submitted
            Assert.Equal(8, ring.Submit(waitFor: 8));
            while (ring.TryTakeCompletion(out var cqe))
            {
                Assert.Equal(0, cqe.Res);
                Assert.True(seen.Add(cqe.UserData));
            }
        }
        Assert.Equal(24, seen.Count);
        Assert.Contains(207ul, seen);
    }

    [Fact]
    public void A_read_on_an_eventfd_completes_when_another_thread_writes_it()
    {
        using var ring = IoUringRing.Create(4);
        var fd = LibC.eventfd(0, LibC.EFD_CLOEXEC);
        Assert.True(fd >= 0);
        var buffer = stackalloc ulong[1];
        try
        {
            var sqe = ring.TryGetSqe();
            sqe->Opcode = IoUringOpcode.Read;
            sqe->Fd = fd;
            sqe->Address = (ulong)buffer;
            sqe->Length = 8;
            sqe->UserData = 42;
            Assert.False(ring.SubmitAndWait(TimeSpan.FromMilliseconds(100)));   // nothing written yet: the wait times out
            var writer = new Thread(() =>
            {
                Thread.Sleep(50);
                ulong seven = 7;
                LibC.write(fd, &seven, 8);
            });
            writer.Start();
            var watch = Stopwatch.StartNew();
            Assert.True(ring.SubmitAndWait(TimeSpan.FromSeconds(10)));
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5));
            Assert.True(ring.TryTakeCompletion(out var cqe));
            Assert.Equal(42ul, cqe.UserData);
            Assert.Equal(8, cqe.Res);
            Assert.Equal(7ul, *buffer);
            writer.Join();
        }
        finally
        {
            LibC.close(fd);
        }
    }

    [Fact]
    public void A_command_the_file_does_not_know_fails_in_its_completion()
    {
        // URING_CMD on an eventfd (which has no uring_cmd handler): the kernel answers -EOPNOTSUPP in the CQE
        using var ring = IoUringRing.Create(4, IoUringSetupFlags.Sqe128);
        var fd = LibC.eventfd(0, LibC.EFD_CLOEXEC);
        try
        {
            var sqe = ring.TryGetSqe();
            sqe->Opcode = IoUringOpcode.UringCmd;
            sqe->Fd = fd;
            sqe->CommandOp = 0xC0207504;
            sqe->UserData = 9;
            ring.CommandArea(sqe).Fill(0xAB);
            Assert.Equal(80, ring.CommandArea(sqe).Length);
            Assert.True(ring.SubmitAndWait(TimeSpan.FromSeconds(10)));
            Assert.True(ring.TryTakeCompletion(out var cqe));
            Assert.Equal(9ul, cqe.UserData);
            Assert.Equal(-95, cqe.Res);
        }
        finally
        {
            LibC.close(fd);
        }
    }
}
