using IserBlockd.Rdma.Interop;
using IserBlockd.Transport.Iser;

namespace IserBlockd.Transport.Tests.Iser;

/// <summary>
/// Type 2 memory windows as an RNIC keeps them: a key is valid from the moment its bind is posted until it is
/// invalidated, and grants only the range and access it was bound with. Keys are (index + base) &lt;&lt; 8 | tag, the tag
/// incremented per bind, as ibv_inc_rkey.
/// </summary>
internal sealed unsafe class FakeWindows : ICommandWindows
{
    private static int s_nextBase = 1;
    private readonly object _gate = new();
    private readonly uint[] _keys;
    private readonly Dictionary<uint, (ulong Address, ulong Length, IbvAccessFlags Access)> _valid = [];

    public FakeWindows(int count)
    {
        var first = Interlocked.Add(ref s_nextBase, count) - count;
        _keys = new uint[count];
        for (var i = 0; i < count; i++) _keys[i] = (uint)(first + i) << 8;
    }

    public int Count => _keys.Length;

    public bool Disposed { get; private set; }

    public int Invalidations { get; private set; }

    public uint PrepareBind(int window, IbvSendWr* workRequest, IntPtr memoryRegion, ulong address, ulong length, IbvAccessFlags access)
    {
        var key = _keys[window] = (_keys[window] & 0xffffff00) | ((_keys[window] + 1) & 0xff);
        workRequest->Opcode = IbvWrOpcode.BindMemoryWindow;
        workRequest->ScatterGatherCount = 0;
        workRequest->BindRemoteKey = key;
        workRequest->BindInfo = new IbvMwBindInfo { MemoryRegion = (void*)memoryRegion, Address = address, Length = length, Access = access };
        return key;
    }

    public void PrepareLocalInvalidate(int window, IbvSendWr* workRequest)
    {
        workRequest->Opcode = IbvWrOpcode.LocalInvalidate;
        workRequest->ScatterGatherCount = 0;
        workRequest->InvalidateRemoteKey = _keys[window];
    }

    public uint KeyOf(int window) => _keys[window];

    /// <summary>The wire posted a bind.</summary>
    public void Bind(uint key, in IbvMwBindInfo info)
    {
        if (info.MemoryRegion == null) throw new InvalidOperationException("bind over no memory region");
        lock (_gate)
        {
            if (!_valid.TryAdd(key, (info.Address, info.Length, info.Access)))
                throw new InvalidOperationException($"key 0x{key:x} bound twice without an invalidate");
        }
    }

    /// <summary>A local invalidate, or the target's Send with Invalidate.</summary>
    public void Invalidate(uint key)
    {
        lock (_gate)
        {
            if (!_valid.Remove(key)) throw new InvalidOperationException($"invalidate of key 0x{key:x}, which is not bound");
            Invalidations++;
        }
    }

    public bool Allows(uint key, ulong address, int length, IbvAccessFlags access)
    {
        lock (_gate)
            return _valid.TryGetValue(key, out var w) && (w.Access & access) == access
                && address >= w.Address && address + (ulong)length <= w.Address + w.Length;
    }

    public int ValidKeys
    {
        get { lock (_gate) return _valid.Count; }
    }

    public void Dispose() => Disposed = true;
}
