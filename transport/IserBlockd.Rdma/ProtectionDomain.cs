using IserBlockd.Rdma.Handles;
using IserBlockd.Rdma.Interop;

namespace IserBlockd.Rdma;

/// <summary>
/// A protection domain (<c>ibv_pd</c>): memory registered in it is usable only by queue pairs created in it.
/// </summary>
public sealed unsafe class ProtectionDomain : IDisposable
{
    private ProtectionDomain(ProtectionDomainHandle handle, DeviceContext device)
    {
        Handle = handle;
        Device = device;
    }

    internal ProtectionDomainHandle Handle { get; }

    public DeviceContext Device { get; }

    public static ProtectionDomain Allocate(DeviceContext device) => new(ProtectionDomainHandle.Allocate(device), device);

    /// <summary>
    /// Registers (pins and maps) <paramref name="length"/> bytes at <paramref name="address"/>. The memory must stay
    /// allocated until the region is disposed.
    /// </summary>
    public MemoryRegion RegisterMemory(void* address, nuint length, IbvAccessFlags access) =>
        new(MemoryRegionHandle.Register(Handle, address, length, access));

    /// <inheritdoc cref="RegisterMemory(void*, nuint, IbvAccessFlags)"/>
    public MemoryRegion RegisterMemory(IntPtr address, nuint length, IbvAccessFlags access) =>
        RegisterMemory((void*)address, length, access);

    public void Dispose() => Handle.Dispose();
}

/// <summary>
/// A registered memory region (<c>ibv_mr</c>): local work requests name it by <see cref="LocalKey"/>, the peer by
/// <see cref="RemoteKey"/> (the iSER STag) together with a virtual address inside it.
/// </summary>
public sealed unsafe class MemoryRegion : IMemoryRegistration
{
    internal MemoryRegion(MemoryRegionHandle handle)
    {
        Handle = handle;
        var mr = handle.Native;
        Address = (IntPtr)mr->Address;
        Length = mr->Length;
        LocalKey = mr->LocalKey;
        RemoteKey = mr->RemoteKey;
    }

    internal MemoryRegionHandle Handle { get; }

    public IntPtr Address { get; }

    public nuint Length { get; }

    public uint LocalKey { get; }

    public uint RemoteKey { get; }

    public IntPtr NativeRegion => Handle.DangerousGetHandle();

    public void Dispose() => Handle.Dispose();
}
