using IserBlockd.Iscsi.Negotiation;
using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.Scsi;

namespace IserBlockd.Iscsi.Sessions;

/// <summary>
/// The commands sent on one connection and not answered yet, the bytes their answers bring if they all succeed (a
/// 48-byte header each, and what is still to come of each READ's data), and how many of them are writes that still
/// wait for an R2T. The receive loop tells its transport before it waits for the network
/// (<see cref="ConnectionPort.IIscsiConnection.ExpectAnswers"/>), so that at a high queue depth one wake-up can take
/// several answers. Changed under the session lock by <see cref="TaskLifecycle"/>; read without it.
/// </summary>
internal sealed class AnswersOwed
{
    /// <summary>The most a write sends before the target asks (immediate and unsolicited data, RFC 7143 §13.11-13.14).</summary>
    private readonly int _unsolicitedLimit;
    private int _sent;
    private int _awaitingR2T;
    private long _bytes;

    public AnswersOwed(NegotiatedParameters parameters)
    {
        var immediate = parameters.ImmediateData ? Math.Min(parameters.FirstBurstLength, parameters.MaxSendDataSegmentLength) : 0;
        _unsolicitedLimit = parameters.InitialR2T ? immediate : parameters.FirstBurstLength;
    }

    /// <summary>Commands that wait for nothing but the target's answer; 0 while any write waits for an R2T, since
    /// its answer needs our Data-Out first and the R2T must not wait behind a held wake-up.</summary>
    public int AnswersOnly => Volatile.Read(ref _awaitingR2T) > 0 ? 0 : Volatile.Read(ref _sent);

    /// <summary>What the answers owed bring if they all succeed: a header each and the READ data still to come.</summary>
    public long Bytes => Volatile.Read(ref _bytes);

    private static long AnswerBytes(ScsiTask task) =>
        BasicHeaderSegment.Length + (task.Direction == ScsiDataDirection.Read ? task.TransferLength - task.DataInBytes : 0);

    /// <summary>The task went out on this connection. Caller holds the session lock.</summary>
    public void Sent(ScsiTask task)
    {
        task.AwaitsR2T = task.Direction == ScsiDataDirection.Write && task.TransferLength > _unsolicitedLimit;
        Volatile.Write(ref _sent, _sent + 1);
        Volatile.Write(ref _bytes, _bytes + AnswerBytes(task));
        if (task.AwaitsR2T) Volatile.Write(ref _awaitingR2T, _awaitingR2T + 1);
    }

    /// <summary>A Data-In's data landed in a sent task (before its DataInBytes grows). Caller holds the session lock.</summary>
    public void Landed(int length) => Volatile.Write(ref _bytes, _bytes - length);

    /// <summary>The task is no longer sent on this connection (answered, ended, or back in the queue). Caller holds the
    /// session lock.</summary>
    public void Left(ScsiTask task)
    {
        Volatile.Write(ref _sent, _sent - 1);
        Volatile.Write(ref _bytes, _bytes - AnswerBytes(task));
        if (!task.AwaitsR2T) return;
        task.AwaitsR2T = false;
        Volatile.Write(ref _awaitingR2T, _awaitingR2T - 1);
    }
}
