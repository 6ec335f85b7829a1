namespace IserBlockd.Rdma.Interop;

/// <summary>
/// Marks a blittable struct as the mirror of a C struct from the rdma-core (or libc) headers. The layout test
/// compiles a C program against those headers and checks the struct's size and every
/// <see cref="NativeFieldAttribute"/> offset and size against it.
/// </summary>
[AttributeUsage(AttributeTargets.Struct, Inherited = false)]
public sealed class NativeStructAttribute(string cType, string header) : Attribute
{
    /// <summary>The C type, e.g. <c>struct ibv_wc</c>.</summary>
    public string CType { get; } = cType;

    /// <summary>The header that declares it, e.g. <c>infiniband/verbs.h</c>.</summary>
    public string Header { get; } = header;
}

/// <summary>The C member (a designator accepted by <c>offsetof</c>, e.g. <c>wr.rdma.rkey</c>) a field mirrors.</summary>
[AttributeUsage(AttributeTargets.Field, Inherited = false)]
public sealed class NativeFieldAttribute(string cMember) : Attribute
{
    public string CMember { get; } = cMember;
}
