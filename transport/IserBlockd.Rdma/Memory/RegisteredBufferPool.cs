using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;
using IserBlockd.Primitives.Async;

namespace IserBlockd.Rdma;

/// <summary>
/// Pinned, pre-registered buffers for zero-copy I/O: one aligned native allocation per size class, registered once
/// (<see cref="IMemoryRegistrar"/>) and sliced into <see cref="RegisteredBuffer"/>s. The NBD side receives WRITE
/// payloads into them and sends READ payloads from them; the iSER transport gives the target their STag/VA so it
/// moves the data by RDMA itself. Renting takes the smallest class that fits (a larger one when it is empty) and
/// waits asynchronously when every buffer that fits is out. Steady state allocates nothing: buffers are their own
/// owner objects and waiters are pooled.
/// </summary>
public sealed unsafe class RegisteredBufferPool : IDisposable
{
    private readonly object _gate = new();
    private readonly SizeClass[] _classes;
    private readonly Stack<Waiter> _idleWaiters = new();
    private int _rented;
    private bool _disposed;
    private bool _released;

    public RegisteredBufferPool(IMemoryRegistrar registrar, RegisteredBufferPoolOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(registrar);
        options ??= RegisteredBufferPoolOptions.Default;
        var classes = options.Validate();
        _classes = new SizeClass[classes.Length];
        try
        {
            for (var i = 0; i < classes.Length; i++)
                _classes[i] = new SizeClass(this, i, classes[i], options.Alignment, registrar);
        }
        catch
        {
            foreach (var c in _classes) c?.Release();
            throw;
        }
        SizeClasses = classes;
        MaxBufferSize = classes[^1].BufferSize;
    }

    public IReadOnlyList<BufferSizeClass> SizeClasses { get; }

    /// <summary>The largest length <see cref="RentAsync"/> accepts.</summary>
    public int MaxBufferSize { get; }

    /// <summary>Buffers currently rented.</summary>
    public int RentedCount
    {
        get { lock (_gate) return _rented; }
    }

    /// <summary>Renters currently waiting for a buffer.</summary>
    public int WaitingCount
    {
        get { lock (_gate) return _classes.Sum(c => c.WaiterCount); }
    }

    /// <summary>Free buffers of the class whose size is <paramref name="bufferSize"/>.</summary>
    public int GetAvailableCount(int bufferSize)
    {
        lock (_gate)
        {
            var c = _classes.FirstOrDefault(c => c.BufferSize == bufferSize)
                ?? throw new ArgumentException($"No size class of {bufferSize} bytes.", nameof(bufferSize));
            return c.FreeCount;
        }
    }

    /// <summary>
    /// Rents a buffer whose <see cref="IMemoryOwner{T}.Memory"/> is exactly <paramref name="length"/> bytes, waiting
    /// when none is free. Dispose the owner to return it.
    /// </summary>
    public ValueTask<IMemoryOwner<byte>> RentAsync(int length, CancellationToken cancellationToken = default)
    {
        var fit = FitClass(length);
        if (cancellationToken.IsCancellationRequested)
            return ValueTask.FromCanceled<IMemoryOwner<byte>>(cancellationToken);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var buffer = TakeFree(fit, length);
            if (buffer != null) return new ValueTask<IMemoryOwner<byte>>(buffer);

            var waiter = _idleWaiters.Count > 0 ? _idleWaiters.Pop() : new Waiter(this);
            waiter.Length = length;
            waiter.CancellationToken = cancellationToken;
            _classes[fit].Enqueue(waiter);
            // Registered under the lock so that whoever dequeues the waiter sees (and disposes) this registration;
            // a synchronous callback re-enters the lock on this thread.
            if (cancellationToken.CanBeCanceled)
                waiter.CancellationRegistration = cancellationToken.UnsafeRegister(static w => ((Waiter)w!).Cancel(), waiter);
            return waiter.WaitAsync();
        }
    }

    /// <summary>Rents without waiting; false when no buffer that fits is free.</summary>
    public bool TryRent(int length, [NotNullWhen(true)] out RegisteredBuffer? buffer)
    {
        var fit = FitClass(length);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            buffer = TakeFree(fit, length);
            return buffer != null;
        }
    }

    private int FitClass(int length)
    {
        if ((uint)length > (uint)MaxBufferSize)
            throw new ArgumentOutOfRangeException(nameof(length), length,
                $"A registered buffer holds 0 to {MaxBufferSize} bytes; split larger transfers.");
        var i = 0;
        while (_classes[i].BufferSize < length) i++;
        return i;
    }

    private RegisteredBuffer? TakeFree(int fit, int length)
    {
        for (var i = fit; i < _classes.Length; i++)
        {
            var buffer = _classes[i].Pop();
            if (buffer == null) continue;
            buffer.MarkRented(length);
            _rented++;
            return buffer;
        }
        return null;
    }

    internal void Return(RegisteredBuffer buffer)
    {
        Waiter? waiter = null;
        var release = false;
        lock (_gate)
        {
            // A returned buffer serves the waiters it fits: its own class first, then smaller ones. So a waiter of
            // class k never waits while a buffer of class k or larger is free.
            if (!_disposed)
            {
                for (var i = buffer.SizeClass; i >= 0 && waiter == null; i--)
                    waiter = _classes[i].Dequeue();
            }
            if (waiter != null)
            {
                buffer.MarkRented(waiter.Length);
            }
            else
            {
                _classes[buffer.SizeClass].Push(buffer);
                _rented--;
                release = _disposed && _rented == 0 && !_released;
                if (release) _released = true;
            }
        }
        if (waiter != null)
        {
            waiter.CancellationRegistration.Dispose(); // waits out a concurrent Cancel, which finds it dequeued
            waiter.SetResult(buffer);
        }
        if (release) ReleaseMemory();
    }

    private void Cancel(Waiter waiter)
    {
        lock (_gate)
        {
            if (!waiter.Queued) return;
            _classes[FitClass(waiter.Length)].Remove(waiter);
        }
        waiter.SetException(new OperationCanceledException(waiter.CancellationToken));
    }

    private void Recycle(Waiter waiter)
    {
        waiter.Clear();
        lock (_gate)
        {
            if (_idleWaiters.Count < 256) _idleWaiters.Push(waiter);
        }
    }

    /// <summary>
    /// Fails every waiter and frees the memory (deregistering it first) once every rented buffer is back.
    /// </summary>
    public void Dispose()
    {
        var waiters = new List<Waiter>();
        bool release;
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            foreach (var c in _classes)
                while (c.Dequeue() is { } w) waiters.Add(w);
            release = _rented == 0;
            if (release) _released = true;
        }
        foreach (var w in waiters)
        {
            w.CancellationRegistration.Dispose();
            w.SetException(new ObjectDisposedException(nameof(RegisteredBufferPool), "The registered buffer pool was disposed while waiting for a buffer."));
        }
        if (release) ReleaseMemory();
    }

    private void ReleaseMemory()
    {
        foreach (var c in _classes) c.Release();
    }

    /// <summary>One size class: its registered region, its free buffers and its waiters (FIFO).</summary>
    private sealed class SizeClass
    {
        private readonly RegisteredBuffer[] _free;
        private byte* _memory;
        private IMemoryRegistration? _registration;
        private Waiter? _head;
        private Waiter? _tail;

        public SizeClass(RegisteredBufferPool pool, int index, BufferSizeClass size, int alignment, IMemoryRegistrar registrar)
        {
            BufferSize = size.BufferSize;
            var bytes = (nuint)size.BufferSize * (nuint)size.Count;
            _memory = (byte*)NativeMemory.AlignedAlloc(bytes, (nuint)alignment);
            NativeMemory.Clear(_memory, bytes);
            try
            {
                _registration = registrar.Register((IntPtr)_memory, bytes);
            }
            catch
            {
                NativeMemory.AlignedFree(_memory);
                _memory = null;
                throw;
            }
            _free = new RegisteredBuffer[size.Count];
            for (var i = 0; i < size.Count; i++)
            {
                // Pushed in reverse so that the first rent gets the lowest address.
                var slot = size.Count - 1 - i;
                _free[i] = new RegisteredBuffer(pool, index, _memory + (nuint)slot * (nuint)size.BufferSize,
                    size.BufferSize, _registration.LocalKey, _registration.RemoteKey);
            }
            FreeCount = size.Count;
        }

        public int BufferSize { get; }

        public int FreeCount { get; private set; }

        public int WaiterCount { get; private set; }

        public RegisteredBuffer? Pop() => FreeCount == 0 ? null : _free[--FreeCount];

        public void Push(RegisteredBuffer buffer) => _free[FreeCount++] = buffer;

        public void Enqueue(Waiter waiter)
        {
            waiter.Queued = true;
            waiter.Next = null;
            waiter.Previous = _tail;
            if (_tail == null) _head = waiter; else _tail.Next = waiter;
            _tail = waiter;
            WaiterCount++;
        }

        public Waiter? Dequeue()
        {
            var w = _head;
            if (w != null) Remove(w);
            return w;
        }

        public void Remove(Waiter waiter)
        {
            if (waiter.Previous == null) _head = waiter.Next; else waiter.Previous.Next = waiter.Next;
            if (waiter.Next == null) _tail = waiter.Previous; else waiter.Next.Previous = waiter.Previous;
            waiter.Next = waiter.Previous = null;
            waiter.Queued = false;
            WaiterCount--;
        }

        public void Release()
        {
            _registration?.Dispose();
            _registration = null;
            if (_memory != null) NativeMemory.AlignedFree(_memory);
            _memory = null;
        }
    }

    /// <summary>A pooled, reusable wait for a buffer (intrusively linked into its size class's queue). The renter
    /// continues on the thread pool, never inside <see cref="Return"/>'s caller; taking the buffer recycles the waiter.</summary>
    private sealed class Waiter(RegisteredBufferPool pool)
        : ResettableCompletionSource<IMemoryOwner<byte>>(runContinuationsAsynchronously: true)
    {
        public int Length;
        public bool Queued;
        public Waiter? Next;
        public Waiter? Previous;
        public CancellationToken CancellationToken;
        public CancellationTokenRegistration CancellationRegistration;

        public void Cancel() => pool.Cancel(this);

        /// <summary>Forgets the finished wait and starts the next version.</summary>
        public void Clear()
        {
            CancellationRegistration = default;
            CancellationToken = default;
            Reset();
        }

        protected override void OnConsumed() => pool.Recycle(this);
    }
}
