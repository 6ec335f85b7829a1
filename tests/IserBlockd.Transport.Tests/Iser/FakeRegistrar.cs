using IserBlockd.Rdma;

namespace IserBlockd.Transport.Tests.Iser;

/// <summary>Stands in for ibv_reg_mr: distinct keys per registration, and a record of what is registered.</summary>
internal sealed class FakeRegistrar : IMemoryRegistrar
{
    private readonly object _gate = new();
    private uint _nextKey = 0x1000;

    public List<Registration> Registrations { get; } = [];

    /// <summary>Off: registrations grant no remote access of their own (memory reached through windows only).</summary>
    public bool RemoteAccess { get; set; } = true;

    public int Live
    {
        get { lock (_gate) return Registrations.Count(r => !r.Disposed); }
    }

    public IMemoryRegistration Register(IntPtr address, nuint length)
    {
        lock (_gate)
        {
            var r = new Registration(address, length, _nextKey, _nextKey + 0x80000);
            _nextKey += 0x100;
            Registrations.Add(r);
            return r;
        }
    }

    /// <summary>The registration that covers [address, address + length) under <paramref name="remoteKey"/>, as an RNIC checks an STag.</summary>
    public Registration? FindRemote(uint remoteKey, ulong address, int length)
    {
        lock (_gate)
            return !RemoteAccess ? null : Registrations.FirstOrDefault(r => !r.Disposed && r.RemoteKey == remoteKey
                && address >= (ulong)r.Address && address + (ulong)length <= (ulong)r.Address + r.Length);
    }

    internal sealed class Registration(IntPtr address, nuint length, uint localKey, uint remoteKey) : IMemoryRegistration
    {
        public IntPtr Address { get; } = address;
        public nuint Length { get; } = length;
        public uint LocalKey { get; } = localKey;
        public uint RemoteKey { get; } = remoteKey;
        public IntPtr NativeRegion => Address; // stands for the ibv_mr* a window is bound over
        public bool Disposed { get; private set; }

        public void Dispose() => Disposed = true;
    }
}
