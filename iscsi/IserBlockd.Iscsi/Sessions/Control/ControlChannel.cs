namespace IserBlockd.Iscsi.Sessions;

/// <summary>
/// The non-SCSI requests of a session (NOP-Out ping, task management, text, logout) waiting for their answer: ITT
/// allocation (bit 31 set, so they never collide with SCSI tasks) and matching of the response.
/// </summary>
internal sealed class ControlChannel
{
    private readonly Dictionary<uint, ControlRequest> _pending = new();
    private uint _nextItt;

    /// <summary>Registers the request and queues it on <paramref name="connection"/>; completes with the response.</summary>
    public Task<ControlResponse> Send(ControlRequest request, FullFeaturePhase connection)
    {
        lock (_pending)
        {
            if (request.Itt == 0)
            {
                do _nextItt = (_nextItt + 1) & 0x7fff_ffff;
                while (_nextItt == 0x7fff_ffff || _pending.ContainsKey(0x8000_0000 | _nextItt));
                request.Itt = 0x8000_0000 | _nextItt;
            }
            _pending[request.Itt] = request;
        }
        if (request.Kind == ControlKind.Ping && connection.SendsPingsConcurrently)
        {
            // Beside the writer: a writer waiting on the transport (iSER credits) must not hold the liveness probe back.
            connection.SendPingBesideWriter(request);
            return request.Completion.Task;
        }
        connection.EnqueueControl(SendWork.ForControl(request));
        connection.SignalWriter();
        return request.Completion.Task;
    }

    public bool Complete(uint itt, ControlKind kind, ReadOnlySpan<byte> header, ReadOnlySpan<byte> data)
    {
        ControlRequest? request;
        lock (_pending)
        {
            if (!_pending.TryGetValue(itt, out request) || request.Kind != kind) return false;
            _pending.Remove(itt);
        }
        request.Completion.TrySetResult(new ControlResponse(header.ToArray(), data.ToArray()));
        return true;
    }

    public void Fail(uint itt, Exception error)
    {
        ControlRequest? request;
        lock (_pending)
        {
            if (!_pending.Remove(itt, out request)) return;
        }
        request.Completion.TrySetException(error);
    }

    /// <summary>The connection ended: every pending request fails.</summary>
    public void FailAll(Exception error)
    {
        List<ControlRequest> all;
        lock (_pending)
        {
            all = [.. _pending.Values];
            _pending.Clear();
        }
        foreach (var r in all) r.Completion.TrySetException(error);
    }
}
