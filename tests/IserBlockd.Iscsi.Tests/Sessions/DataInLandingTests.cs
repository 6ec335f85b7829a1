using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.Scsi;
using IserBlockd.Iscsi.Sessions;
using IserBlockd.Iscsi.Tests.Fakes;
using Xunit.Abstractions;

namespace IserBlockd.Iscsi.Tests.Sessions;

/// <summary>
/// A READ ended by another path while its Data-In segment is still landing in the caller's buffer (the receive loop
/// copies it outside the session lock): the caller gets neither its completion nor its buffer back, and the command
/// does not go out again, before the copy is over; a receive that never finishes ends with its connection.
/// </summary>
/// <remarks>
/// Ends from other threads come from a TMF's answer, acted on from the thread pool at a moment a test cannot pin
/// down: the tests call what that continuation calls (<see cref="IscsiSession.EndLunTasks"/>, the abort's
/// FailTask) while the segment is held half received.
/// </remarks>
public sealed class DataInLandingTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);
    private const uint Lba = 8;
    private const int Length = 4096; // one Data-In PDU, with the status

    [Fact]
    public async Task A_raw_read_a_lun_reset_ends_while_its_data_lands_fails_only_once_the_copy_is_over()
    {
        var (bed, session, connection) = await StartAsync();
        await using var _ = session;
        var resume = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        connection.PauseDataIn = resume;
        var read = session.ExecuteAsync(1, Read10(), ScsiDataDirection.Read, new byte[Length]).AsTask();
        var overAtCompletion = ReceiveOverAtCompletion(read, connection);
        var itt = await PausedAsync(bed, connection);

        var (reissued, failed) = session.EndLunTasks(1, session.Tasks.Find(itt)!.Connection!, "was ended by a LOGICAL UNIT RESET");
        Assert.Equal((0, 1), (reissued, failed));
        Assert.Equal(1, session.OutstandingCommands); // not retired: the receive loop still writes into its buffer
        await Task.Delay(200);
        Assert.False(read.IsCompleted);

        resume.SetResult();
        var e = await Assert.ThrowsAsync<IscsiCommandTimeoutException>(() => read.WaitAsync(Deadline));
        Assert.Contains("LOGICAL UNIT RESET", e.Message);
        Assert.True(await overAtCompletion);
        Assert.Equal(0, session.OutstandingCommands);
        await AssertReadsDiskAsync(bed, session);
    }

    [Fact]
    public async Task A_retried_read_a_lun_reset_ends_while_its_data_lands_goes_out_again_only_once_the_copy_is_over()
    {
        var (bed, session, connection) = await StartAsync();
        await using var _ = session;
        var resume = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        connection.PauseDataIn = resume;
        var buffer = new byte[Length];
        var read = session.ExecuteWithRetryAsync(1, Read10(), ScsiDataDirection.Read, buffer).AsTask();
        var itt = await PausedAsync(bed, connection);

        var (reissued, failed) = session.EndLunTasks(1, session.Tasks.Find(itt)!.Connection!, "was ended by a LOGICAL UNIT RESET");
        Assert.Equal((1, 0), (reissued, failed));
        // The target's data changes after the first answer: the caller must end up with the re-issued command's.
        var fresh = new byte[Length];
        Random.Shared.NextBytes(fresh);
        lock (bed.Target.Disk) fresh.CopyTo(bed.Target.Disk, Lba * 512);
        await Task.Delay(200);
        Assert.Equal(1, CountReads(bed)); // not re-issued into the buffer the old answer still lands in
        Assert.False(read.IsCompleted);

        resume.SetResult();
        var result = await read.WaitAsync(Deadline);
        Assert.Equal(Length, result.BytesTransferred);
        Assert.Equal(fresh, buffer);
        Assert.Equal(2, CountReads(bed));
        Assert.Equal(1, session.Counters.CommandsReissued);
        Assert.Equal(0, session.OutstandingCommands);
    }

    [Fact]
    public async Task A_cancelled_read_whose_data_stops_landing_when_the_connection_dies_fails_once_the_receive_is_over()
    {
        var (bed, session, connection) = await StartAsync();
        await using var _ = session;
        connection.PauseDataIn = new TaskCompletionSource(); // never resumed: only the connection's end stops this receive
        var read = session.ExecuteAsync(1, Read10(), ScsiDataDirection.Read, new byte[Length]).AsTask();
        var overAtCompletion = ReceiveOverAtCompletion(read, connection);
        var itt = await PausedAsync(bed, connection);

        // What a confirmed ABORT TASK of a cancelled command does.
        session.FailTask(itt, new OperationCanceledException($"the command (ITT 0x{itt:x8}) was aborted"));
        Assert.Equal(1, session.OutstandingCommands);
        await Task.Delay(200);
        Assert.False(read.IsCompleted);

        session.AbortConnection("test: the connection is declared dead");
        var e = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => read.WaitAsync(Deadline));
        Assert.Contains("was aborted", e.Message);
        Assert.True(await overAtCompletion);
        Assert.Equal(0, session.OutstandingCommands);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_read_whose_connection_dies_while_its_data_lands_ends_after_the_receive(bool retain)
    {
        var (bed, session, connection) = await StartAsync(retain);
        await using var _ = session;
        connection.PauseDataIn = new TaskCompletionSource();
        var buffer = new byte[Length];
        var read = session.ExecuteWithRetryAsync(1, Read10(), ScsiDataDirection.Read, buffer).AsTask();
        var overAtCompletion = ReceiveOverAtCompletion(read, connection);
        await PausedAsync(bed, connection);

        session.AbortConnection("test: the connection is declared dead");
        if (!retain)
        {
            await Assert.ThrowsAsync<IscsiConnectionLostException>(() => read.WaitAsync(Deadline));
            Assert.True(await overAtCompletion);
            return;
        }
        // Kept for the next connection only once the receive loop stopped writing into the buffer.
        await Wait.Until(() => session.State == IscsiSessionState.ConnectionLost, "the connection loss", Deadline);
        Assert.True(connection.PausedReceiveOver);
        Assert.False(read.IsCompleted);
        await session.ReinstateAsync().WaitAsync(Deadline);
        await read.WaitAsync(Deadline);
        Assert.True(await overAtCompletion);
        Assert.Equal(bed.Target.Disk.AsSpan((int)Lba * 512, Length).ToArray(), buffer);
    }

    private async Task<(FakeTargetBed Bed, IscsiSession Session, InMemoryConnection Connection)> StartAsync(bool retain = false)
    {
        var bed = new FakeTargetBed(output);
        Random.Shared.NextBytes(bed.Target.Disk);
        var session = await bed.LoginAsync(bed.Options() with { RetainCommandsOnConnectionLoss = retain });
        await session.OpenLunAsync(1); // takes the fake target's first UNIT ATTENTION
        InMemoryConnection connection;
        lock (bed.Transport.Connections) connection = bed.Transport.Connections[^1];
        return (bed, session, connection);
    }

    private static byte[] Read10()
    {
        var cdb = new byte[10];
        CdbBuilder.Read10(cdb, Lba, Length / 512);
        return cdb;
    }

    private static bool IsRead(RawPdu pdu) => pdu.Opcode == IscsiOpcode.ScsiCommand && pdu.Header[32] == ScsiOpcode.Read10;

    private static int CountReads(FakeTargetBed bed) => bed.CountReceived(IsRead);

    /// <summary>Half the READ's segment is in the buffer, the rest held back; returns the READ's ITT.</summary>
    private static async Task<uint> PausedAsync(FakeTargetBed bed, InMemoryConnection connection)
    {
        await connection.DataInPaused.Task.WaitAsync(Deadline);
        return (await bed.WaitForAsync(IsRead)).Itt;
    }

    /// <summary>Whether the paused receive was over (nothing more could land in the buffer) when the caller got its completion.</summary>
    private static Task<bool> ReceiveOverAtCompletion(Task read, InMemoryConnection connection) =>
        read.ContinueWith(_ => connection.PausedReceiveOver, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    private static async Task AssertReadsDiskAsync(FakeTargetBed bed, IscsiSession session)
    {
        var buffer = new byte[Length];
        await session.ExecuteWithRetryAsync(1, Read10(), ScsiDataDirection.Read, buffer).AsTask().WaitAsync(Deadline);
        Assert.Equal(bed.Target.Disk.AsSpan((int)Lba * 512, Length).ToArray(), buffer);
    }
}
