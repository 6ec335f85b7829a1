namespace IserBlockd.BlockDev.Kernel;

public enum KernelAttachMethod
{
    /// <summary>Netlink when the kernel has the "nbd" family, else the ioctls.</summary>
    Auto,
    /// <summary>The "nbd" generic netlink family (Linux 4.12+): auto index, RECONFIGURE, STATUS.</summary>
    Netlink,
    /// <summary>NBD_SET_SOCK … NBD_DO_IT on /dev/nbdN: no RECONFIGURE, the device ends with its process.</summary>
    Ioctl,
}
