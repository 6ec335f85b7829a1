using IserBlockd.Rdma.Interop;

namespace IserBlockd.Rdma;

/// <summary>Registers memory for RDMA. The real one is <see cref="ProtectionDomainRegistrar"/>; tests use a fake.</summary>
public interface IMemoryRegistrar
{
    /// <summary>Registers <paramref name="length"/> bytes at <paramref name="address"/> for local write and remote read/write.</summary>
    IMemoryRegistration Register(IntPtr address, nuint length);
}

/// <summary>A registration: the keys local SGEs and the peer use. Disposing it deregisters the memory.</summary>
public interface IMemoryRegistration : IDisposable
{
    uint LocalKey { get; }

    uint RemoteKey { get; }

    /// <summary>The <c>ibv_mr*</c> a memory window is bound over (zero where there is none, as in tests' fakes).</summary>
    IntPtr NativeRegion => IntPtr.Zero;
}

/// <summary>
/// Registers memory in a protection domain with the access iSER needs: local write (receives, RDMA READ
/// targets) and remote read/write (the target RDMA-Reads WRITE payloads and RDMA-Writes READ payloads).
/// </summary>
public sealed class ProtectionDomainRegistrar(ProtectionDomain protectionDomain, IbvAccessFlags access = ProtectionDomainRegistrar.Access) : IMemoryRegistrar
{
    public const IbvAccessFlags Access = IbvAccessFlags.LocalWrite | IbvAccessFlags.RemoteRead | IbvAccessFlags.RemoteWrite;

    /// <summary>
    /// For memory the peer reaches only through memory windows bound per command: no remote access of its own, so its
    /// rkey opens nothing.
    /// </summary>
    public const IbvAccessFlags WindowAccess = IbvAccessFlags.LocalWrite | IbvAccessFlags.MemoryWindowBind;

    public ProtectionDomain ProtectionDomain { get; } = protectionDomain;

    public IMemoryRegistration Register(IntPtr address, nuint length) =>
        ProtectionDomain.RegisterMemory(address, length, access);
}
