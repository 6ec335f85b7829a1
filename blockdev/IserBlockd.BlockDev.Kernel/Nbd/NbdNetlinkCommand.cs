namespace IserBlockd.BlockDev.Kernel.Nbd;

/// <summary>Commands of the "nbd" generic netlink family (linux/nbd-netlink.h).</summary>
public enum NbdNetlinkCommand : byte
{
    Connect = 1,
    Disconnect = 2,
    Reconfigure = 3,
    /// <summary>Multicast by the kernel when a connection of a device dies.</summary>
    LinkDead = 4,
    Status = 5,
}
