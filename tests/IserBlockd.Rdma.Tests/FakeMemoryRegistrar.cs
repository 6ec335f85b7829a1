using IserBlockd.Primitives.Native;
namespace IserBlockd.Rdma.Tests;

/// <summary>Stands in for ibv_reg_mr: hands out distinct keys and records what is registered and deregistered.</summary>
internal sealed class FakeMemoryRegistrar : IMemoryRegistrar
{
    private uint _nextKey = 0x100;

    public List<Registration> Registrations { get; } = [];

    public int FailAfter { get; init; } = int.MaxValue;

    public IMemoryRegistration Register(IntPtr address, nuint length)
    {
        if (Registrations.Count >= FailAfter)
            throw new RdmaException("ibv_reg_mr(fake) failed: ENOMEM: Cannot allocate memory", Errno.ENOMEM);
        var r = new Registration(address, length, _nextKey++, _nextKey++);
        Registrations.Add(r);
        return r;
    }

    internal sealed class Registration(IntPtr address, nuint length, uint localKey, uint remoteKey) : IMemoryRegistration
    {
        public IntPtr Address { get; } = address;
        public nuint Length { get; } = length;
        public uint LocalKey { get; } = localKey;
        public uint RemoteKey { get; } = remoteKey;
        public int DisposeCount { get; private set; }

        public bool Contains(ulong address, uint length) =>
            address >= (ulong)Address && address + length <= (ulong)Address + Length;

        public void Dispose() => DisposeCount++;
    }
}
