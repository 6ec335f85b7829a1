namespace IserBlockd.BlockDev.Kernel.Netlink;

/// <summary>The kernel has no generic netlink family of that name (for "nbd": the module is not loaded,
/// or the kernel predates the netlink interface, 4.12).</summary>
public sealed class NetlinkFamilyNotFoundException(string family, Exception inner)
    : Exception($"the kernel has no generic netlink family '{family}' (module not loaded?)", inner)
{
    public string Family { get; } = family;
}
