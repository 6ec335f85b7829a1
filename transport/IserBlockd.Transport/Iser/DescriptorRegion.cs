using System.Buffers;
using System.Runtime.InteropServices;
using IserBlockd.Rdma;
using IserBlockd.Rdma.Interop;

namespace IserBlockd.Transport.Iser;

/// <summary>
/// The connection's own memory, one page-aligned native allocation: every receive buffer and send descriptor
/// (registered once, local access only: the target never sees its keys), followed by the native work requests and
/// SGEs that name them. Receive buffers hold a whole incoming control PDU (iSER header, BHS, AHS, data segment);
/// send descriptors an outgoing one; each memory window has its bind and local invalidate work requests here too. The region is also a <see cref="MemoryManager{T}"/>, so headers and small data
/// segments reach the core as <see cref="Memory{T}"/> slices without copying or allocating.
/// <para>
/// Teardown deregisters the memory as soon as the queue pair is destroyed, but frees it only when nobody reads it
/// any more (the core may still be looking at the last header when a failure closes the connection from another
/// thread); a finalizer frees it if that moment never comes.
/// </para>
/// </summary>
internal sealed unsafe class DescriptorRegion : MemoryManager<byte>
{
    private const int Alignment = 4096;
    private readonly nuint _length;
    private readonly nuint _registeredLength;
    private byte* _memory;
    private IMemoryRegistration? _registration;

    public DescriptorRegion(IMemoryRegistrar registrar, int receiveCount, int receiveSize, int sendCount, int sendSize, int windowCount = 0)
    {
        ReceiveCount = receiveCount;
        ReceiveSize = receiveSize;
        SendSize = sendSize;
        _sendStart = (long)receiveCount * receiveSize;
        var buffers = _sendStart + (long)sendCount * sendSize;
        _registeredLength = (nuint)RoundUp(buffers, Alignment);
        var receiveRequests = (long)_registeredLength;
        var receiveSges = receiveRequests + (long)receiveCount * sizeof(IbvRecvWr);
        var sendRequests = RoundUp(receiveSges + (long)receiveCount * sizeof(IbvSge), 64);
        var sendSges = sendRequests + (long)sendCount * sizeof(IbvSendWr);
        var windowBinds = RoundUp(sendSges + (long)sendCount * sizeof(IbvSge), 64);
        var windowInvalidates = windowBinds + (long)windowCount * sizeof(IbvSendWr);
        var total = RoundUp(windowInvalidates + (long)windowCount * sizeof(IbvSendWr), Alignment);
        if (total > int.MaxValue) throw new ArgumentException($"{total} bytes of descriptors exceed 2 GiB; lower the queue depths or segment lengths.");
        _length = (nuint)total;
        _memory = (byte*)NativeMemory.AlignedAlloc(_length, Alignment);
        NativeMemory.Clear(_memory, _length);
        ReceiveRequests = (IbvRecvWr*)(_memory + receiveRequests);
        ReceiveSges = (IbvSge*)(_memory + receiveSges);
        SendRequests = (IbvSendWr*)(_memory + sendRequests);
        SendSges = (IbvSge*)(_memory + sendSges);
        WindowBindRequests = (IbvSendWr*)(_memory + windowBinds);
        WindowInvalidateRequests = (IbvSendWr*)(_memory + windowInvalidates);
        try
        {
            _registration = registrar.Register((IntPtr)_memory, _registeredLength);
        }
        catch
        {
            NativeMemory.AlignedFree(_memory);
            _memory = null;
            GC.SuppressFinalize(this);
            throw;
        }
        LocalKey = _registration.LocalKey;
    }

#pragma warning disable CA2015 // Spans over this memory live only inside calls of the connection that owns (and so roots) the region.
    ~DescriptorRegion() => FreeMemory();
#pragma warning restore CA2015

    private readonly long _sendStart;

    public int ReceiveCount { get; }
    public int ReceiveSize { get; }
    public int SendSize { get; }
    public uint LocalKey { get; }

    public IbvRecvWr* ReceiveRequests { get; }
    public IbvSge* ReceiveSges { get; }
    public IbvSendWr* SendRequests { get; }
    public IbvSge* SendSges { get; }

    /// <summary>Per memory window: its bind work request (posted right before the command's Send).</summary>
    public IbvSendWr* WindowBindRequests { get; }

    /// <summary>Per memory window: its local invalidate work request.</summary>
    public IbvSendWr* WindowInvalidateRequests { get; }

    public int ReceiveOffset(int index) => index * ReceiveSize;

    public int SendOffset(int index) => (int)(_sendStart + (long)index * SendSize);

    public ulong AddressOf(int offset) => (ulong)(_memory + offset);

    public Span<byte> Slice(int offset, int length)
    {
        ObjectDisposedException.ThrowIf(_memory == null, this);
        return new Span<byte>(_memory + offset, length);
    }

    public override Span<byte> GetSpan()
    {
        ObjectDisposedException.ThrowIf(_memory == null, this);
        return new Span<byte>(_memory, (int)_registeredLength);
    }

    public override MemoryHandle Pin(int elementIndex = 0) => new(_memory + elementIndex);

    public override void Unpin() { }

    /// <summary>Deregisters the memory (after the queue pair is destroyed: until then the device may write into it).</summary>
    public void Deregister()
    {
        _registration?.Dispose();
        _registration = null;
    }

    /// <summary>Frees the memory (once nobody reads a descriptor any more).</summary>
    public void FreeMemory()
    {
        var memory = _memory;
        _memory = null;
        if (memory != null) NativeMemory.AlignedFree(memory);
        GC.SuppressFinalize(this);
    }

    protected override void Dispose(bool disposing)
    {
        Deregister();
        FreeMemory();
    }

    private static long RoundUp(long value, long multiple) => (value + multiple - 1) / multiple * multiple;
}
