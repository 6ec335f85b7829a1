using System.Buffers;
using IserBlockd.BlockDev.Nbd.Protocol;

namespace IserBlockd.BlockDev.Nbd;

/// <summary>
/// One request on its way from the socket, through the device, to its reply. Pooled per connection;
/// device completions continue through a cached delegate, so a request allocates nothing even when
/// the device completes asynchronously (as long as the device's ValueTasks are pooled themselves).
/// </summary>
internal sealed class NbdRequestContext
{
    private readonly NbdConnection _connection;
    private readonly Action _onOperationCompleted;
    private ValueTask _pending;
    private int _stage;

    public NbdRequestContext(NbdConnection connection)
    {
        _connection = connection;
        _onOperationCompleted = OnOperationCompleted;
    }

    /// <summary>Link in the connection's reply queue.</summary>
    public NbdRequestContext? Next;

    public ulong Handle;
    public NbdCommand Command;
    public NbdCommandFlags Flags;
    public long Offset;
    public long Length;
    public IMemoryOwner<byte>? Buffer;
    public BlockError Error;
    public ReadOnlyMemory<byte> ErrorMessage;

    public bool IsFua => (Flags & NbdCommandFlags.Fua) != 0;

    public void Initialize(in NbdRequest request)
    {
        Handle = request.Handle;
        Command = request.Command;
        Flags = request.Flags;
        Offset = (long)request.Offset;
        Length = request.Length;
        _stage = 0;
    }

    public void Fail(BlockError error, ReadOnlyMemory<byte> message)
    {
        Error = error;
        ErrorMessage = message;
    }

    public void Reset()
    {
        Buffer?.Dispose();
        Buffer = null;
        Error = 0;
        ErrorMessage = default;
        Next = null;
        _pending = default;
    }

    /// <summary>Runs the request's device operations (one or two stages) and then queues its reply.</summary>
    public void Execute()
    {
        while (true)
        {
            try
            {
                if (!_connection.TryStartStage(this, _stage, out var operation)) break;
                if (!operation.IsCompleted)
                {
                    _pending = operation;
                    operation.GetAwaiter().UnsafeOnCompleted(_onOperationCompleted);
                    return;
                }
                operation.GetAwaiter().GetResult();
            }
            catch (Exception e)
            {
                _connection.OnOperationFailed(this, e);
                break;
            }
            _stage++;
        }
        _connection.OnRequestCompleted(this);
    }

    private void OnOperationCompleted()
    {
        var operation = _pending;
        _pending = default;
        try
        {
            operation.GetAwaiter().GetResult();
        }
        catch (Exception e)
        {
            _connection.OnOperationFailed(this, e);
            _connection.OnRequestCompleted(this);
            return;
        }
        _stage++;
        Execute();
    }
}
