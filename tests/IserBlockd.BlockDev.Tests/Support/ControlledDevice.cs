using System.Collections.Concurrent;
using IserBlockd.BlockDev.Devices;

namespace IserBlockd.BlockDev.Tests.Support;

public enum DeviceOperation { Read, Write, Flush, Trim, WriteZeroes }

/// <summary>What reached the device, in order of completion.</summary>
public readonly record struct DeviceEvent(DeviceOperation Operation, long Offset, long Length, bool Fua, bool Completed);

/// <summary>
/// A device in front of a <see cref="MemoryBlockDevice"/> that tests can steer: hold operations until
/// released (to force out-of-order completion or keep writes in flight across a FLUSH), fail chosen
/// ones, and see the order in which operations started and finished.
/// </summary>
public sealed class ControlledDevice(MemoryBlockDevice inner) : IBlockDevice
{
    private readonly ConcurrentQueue<DeviceEvent> _events = new();

    public MemoryBlockDevice Inner { get; } = inner;

    /// <summary>Return a task to hold the operation until it completes; null lets it run at once.</summary>
    public Func<DeviceOperation, long, Task?>? Gate { get; set; }

    /// <summary>Return an exception to fail the operation with it (checked before the gate).</summary>
    public Func<DeviceOperation, long, Exception?>? Fault { get; set; }

    public IReadOnlyList<DeviceEvent> Events => _events.ToArray();

    /// <summary>Bursts the server opened and closed (<see cref="IBlockDevice.BeginBurst"/>), and operations started inside one.</summary>
    public int BurstsBegun, BurstsEnded, StartedInBurst;

    public void BeginBurst() => Interlocked.Increment(ref BurstsBegun);

    public void EndBurst() => Interlocked.Increment(ref BurstsEnded);

    /// <summary>The size the device reports instead of the inner one's (a LUN resized at the target); null: the inner size.</summary>
    public long? Size { get; set; }

    public BlockGeometry Geometry => Size is { } size ? Inner.Geometry with { Size = size } : Inner.Geometry;
    public BlockDeviceFeatures Features => Inner.Features;
    public IBlockBufferProvider Buffers => Inner.Buffers;

    public ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken) =>
        Run(DeviceOperation.Read, offset, destination.Length, false, () => Inner.ReadAsync(offset, destination, cancellationToken));

    public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> source, bool fua, CancellationToken cancellationToken) =>
        Run(DeviceOperation.Write, offset, source.Length, fua, () => Inner.WriteAsync(offset, source, fua, cancellationToken));

    public ValueTask FlushAsync(CancellationToken cancellationToken) =>
        Run(DeviceOperation.Flush, 0, 0, false, () => Inner.FlushAsync(cancellationToken));

    public ValueTask TrimAsync(long offset, long length, CancellationToken cancellationToken) =>
        Run(DeviceOperation.Trim, offset, length, false, () => Inner.TrimAsync(offset, length, cancellationToken));

    public ValueTask WriteZeroesAsync(long offset, long length, bool mayUnmap, CancellationToken cancellationToken) =>
        Run(DeviceOperation.WriteZeroes, offset, length, false, () => Inner.WriteZeroesAsync(offset, length, mayUnmap, cancellationToken));

    public ValueTask<int> GetAllocationAsync(long offset, long length, Memory<BlockExtent> extents, CancellationToken cancellationToken) =>
        Inner.GetAllocationAsync(offset, length, extents, cancellationToken);

    public ValueTask PrefetchAsync(long offset, long length, CancellationToken cancellationToken) =>
        Inner.PrefetchAsync(offset, length, cancellationToken);

    private ValueTask Run(DeviceOperation operation, long offset, long length, bool fua, Func<ValueTask> action)
    {
        _events.Enqueue(new DeviceEvent(operation, offset, length, fua, Completed: false));
        if (Volatile.Read(ref BurstsBegun) > Volatile.Read(ref BurstsEnded)) Interlocked.Increment(ref StartedInBurst);
        if (Fault?.Invoke(operation, offset) is { } failure) return ValueTask.FromException(failure);
        var gate = Gate?.Invoke(operation, offset);
        if (gate == null)
        {
            var result = action();
            _events.Enqueue(new DeviceEvent(operation, offset, length, fua, Completed: true));
            return result;
        }
        return new ValueTask(RunAfter(gate));

        async Task RunAfter(Task held)
        {
            await held.ConfigureAwait(false);
            await action().ConfigureAwait(false);
            _events.Enqueue(new DeviceEvent(operation, offset, length, fua, Completed: true));
        }
    }
}
