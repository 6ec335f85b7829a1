using IserBlockd.Rdma.Interop;

namespace IserBlockd.Rdma;

/// <summary>
/// Where a piece of registered memory is, for RDMA: the virtual address and length, the lkey for local SGEs and the
/// rkey (STag) the peer uses. iSER puts <see cref="RemoteKey"/> and <see cref="Address"/> in the read/write
/// STag and VA fields of its header.
/// </summary>
public readonly record struct RdmaSegment(ulong Address, uint Length, uint LocalKey, uint RemoteKey)
{
    /// <summary>The SGE naming this segment in a local work request.</summary>
    public IbvSge ToSge() => new(Address, Length, LocalKey);
}
