using IserBlockd.Iscsi.Sessions;
using Microsoft.Extensions.Logging;

namespace IserBlockd.Iscsi.Scsi;

/// <summary>
/// Unit attentions (and the equivalent asynchronous events) act on the LUN, as the Linux sd driver does: capacity
/// changed (2A/09) re-reads the capacity and announces it (<see cref="CapacityChanged"/>; a LUN that shrank refuses
/// requests past its new end); mode parameters changed (2A/01) is announced (<see cref="ModeParametersChanged"/>) so
/// the owner re-reads the caching page; a logical block size that changed takes the LUN offline with a clear error
/// instead of computing wrong LBAs.
/// </summary>
public sealed partial class ScsiLun
{
    private readonly SemaphoreSlim _refresh = new(1, 1);
    private string? _offline;

    /// <summary>The LUN's size changed (unit attention 2A/09 or an asynchronous event): the new capacity is in place. Raised on the thread pool.</summary>
    public event EventHandler<LunCapacityChangedEventArgs>? CapacityChanged;

    /// <summary>The target reported changed mode parameters (2A/01), e.g. the write cache switched. Raised on the thread pool.</summary>
    public event EventHandler? ModeParametersChanged;

    /// <summary>Why the LUN takes no more I/O (its logical block size changed under us); null while usable.</summary>
    public string? OfflineReason => Volatile.Read(ref _offline);

    private void WatchAttentions()
    {
        Session.UnitAttention += OnAttention;
        Session.AsynchronousEvent += OnAttention;
    }

    private void OnAttention(object? sender, ScsiAsyncEventArgs e)
    {
        if (e.Lun != Lun || e.Sense is not { } sense) return;
        switch (sense.AdditionalSenseCode, sense.AdditionalSenseCodeQualifier)
        {
            case (0x2a, 0x09):
                _ = RefreshCapacityAsync();
                break;
            case (0x2a, 0x01):
                ScsiLog.ModeParametersChanged(_logger, Lun);
                ModeParametersChanged?.Invoke(this, EventArgs.Empty);
                break;
            case (0x3f, 0x03):
                ScsiLog.InquiryDataChanged(_logger, Lun);
                break;
        }
    }

    /// <summary>READ CAPACITY again after the target said the capacity changed.</summary>
    public async Task RefreshCapacityAsync(CancellationToken cancellationToken = default)
    {
        await _refresh.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var old = Capacity;
            var now = await ReadCapacityDataAsync(cancellationToken).ConfigureAwait(false);
            if (now.LogicalBlockLength != old.LogicalBlockLength)
            {
                var reason = $"LUN {Lun}: the logical block size changed from {old.LogicalBlockLength} to {now.LogicalBlockLength} bytes; the LUN is offline (map it again)";
                Volatile.Write(ref _offline, reason);
                ScsiLog.CapacityCheckFailed(_logger, reason);
                return;
            }
            if (now.BlockCount == old.BlockCount) return;
            Capacity = now;
            ChooseCommandSize();
            ScsiLog.CapacityChanged(_logger, Lun, old.BlockCount, now.BlockCount, now.LogicalBlockLength);
            CapacityChanged?.Invoke(this, new LunCapacityChangedEventArgs(old, now));
        }
        catch (Exception e) when (e is IscsiException or OperationCanceledException)
        {
            ScsiLog.CapacityRereadFailed(_logger, Lun, e.Message);
        }
        finally
        {
            _refresh.Release();
        }
    }

    /// <summary>READ CAPACITY(16), or (10) when the LU rejects it, without touching <see cref="Capacity"/>.</summary>
    private async Task<ReadCapacityData> ReadCapacityDataAsync(CancellationToken cancellationToken)
    {
        var buffer = new byte[32];
        var cdb = new byte[16];
        CdbBuilder.ReadCapacity16(cdb, (uint)buffer.Length);
        try
        {
            var result = await ExecuteWithRetryAsync(cdb, ScsiDataDirection.Read, buffer, cancellationToken).ConfigureAwait(false);
            return ReadCapacityData.Parse16(buffer.AsSpan(0, result.BytesTransferred));
        }
        catch (ScsiCommandException e) when (e.Sense?.Key == SenseKey.IllegalRequest)
        {
            var cdb10 = new byte[10];
            CdbBuilder.ReadCapacity10(cdb10);
            var result = await ExecuteWithRetryAsync(cdb10, ScsiDataDirection.Read, buffer.AsMemory(0, 8), cancellationToken).ConfigureAwait(false);
            return ReadCapacityData.Parse10(buffer.AsSpan(0, result.BytesTransferred));
        }
    }

    private void ThrowIfOffline()
    {
        if (Volatile.Read(ref _offline) is { } reason) throw new IscsiException(reason);
    }
}

/// <summary>A LUN's capacity before and after a change the target announced.</summary>
public sealed class LunCapacityChangedEventArgs(ReadCapacityData old, ReadCapacityData current) : EventArgs
{
    public ReadCapacityData Old { get; } = old;
    public ReadCapacityData Current { get; } = current;
    public ulong SizeBytes => Current.CapacityBytes;
}
