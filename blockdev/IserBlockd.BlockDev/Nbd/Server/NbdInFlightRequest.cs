using System.Buffers;
using IserBlockd.BlockDev.Nbd.Protocol;

namespace IserBlockd.BlockDev.Nbd;

/// <summary>
/// One request from the moment its header is parsed until its reply has left: what the client asked,
/// the payload buffer, and the outcome the reply reports. Pooled per connection (<see cref="NbdConnection"/>),
/// so a request allocates nothing.
/// </summary>
internal sealed class NbdInFlightRequest
{
    private readonly Action<NbdInFlightRequest> _onRun;
    private readonly Action _onRunCompleted;
    private ValueTask _running;

    /// <param name="onRun">Called once the device work has ended (successfully or not): queues the reply.</param>
    public NbdInFlightRequest(Action<NbdInFlightRequest> onRun)
    {
        _onRun = onRun;
        _onRunCompleted = OnRunCompleted;
    }

    /// <summary>Link in the reply queue.</summary>
    public NbdInFlightRequest? Next;

    public ulong Handle;
    public NbdCommand Command;
    public NbdCommandFlags Flags;
    public long Offset;
    public long Length;
    /// <summary>READ destination or WRITE source, rented from the device's buffer provider.</summary>
    public IMemoryOwner<byte>? Buffer;
    public BlockError Error;
    public ReadOnlyMemory<byte> ErrorMessage;
    /// <summary>BLOCK_STATUS: the extents found (allocated with the request object on first use).</summary>
    public BlockExtent[]? Extents;
    public int ExtentCount;
    /// <summary>READ/WRITE payload counted in the connection's bytes in flight.</summary>
    public long PayloadBytes;
    /// <summary>What the export's and the servers' client budgets were charged (0: nothing).</summary>
    public long ExportBudgetCharge, ClientBudgetCharge;

    public bool IsFua => (Flags & NbdCommandFlags.Fua) != 0;

    public void Initialize(in NbdRequest request)
    {
        Handle = request.Handle;
        Command = request.Command;
        Flags = request.Flags;
        Offset = (long)request.Offset;
        Length = request.Length;
    }

    public void Fail(BlockError error, ReadOnlyMemory<byte> message)
    {
        Error = error;
        ErrorMessage = message;
    }

    /// <summary>Waits for the request's device work (a pooled async method that records failures in the
    /// request rather than throwing) without blocking, then hands the request on for its reply.</summary>
    public void Await(ValueTask running)
    {
        if (running.IsCompleted)
        {
            running.GetAwaiter().GetResult();
            _onRun(this);
            return;
        }
        _running = running;
        // Without ConfigureAwait(false) the awaiter would capture the registering thread's SynchronizationContext or
        // TaskScheduler and post the reply there instead of queueing it on the completing thread.
        running.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(_onRunCompleted);
    }

    private void OnRunCompleted()
    {
        var running = _running;
        _running = default;
        running.GetAwaiter().GetResult(); // returns the pooled state machine
        _onRun(this);
    }

    public void Reset()
    {
        Buffer?.Dispose();
        Buffer = null;
        Error = 0;
        ErrorMessage = default;
        ExtentCount = 0;
        PayloadBytes = ExportBudgetCharge = ClientBudgetCharge = 0;
        Next = null;
    }
}
