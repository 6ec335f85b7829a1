using IserBlockd.BlockDev.Kernel;

namespace IserBlockd.Daemon.Configuration;

/// <summary>The names of <see cref="KernelAttachMethod"/> in the configuration (<c>kernelNbdMethod</c>) and the log.</summary>
public static class KernelAttachMethodNames
{
    public static string ToName(this KernelAttachMethod method) => method switch
    {
        KernelAttachMethod.Netlink => "netlink",
        KernelAttachMethod.Ioctl => "ioctl",
        _ => "auto",
    };

    public static bool TryParse(string text, out KernelAttachMethod method)
    {
        switch (text)
        {
            case "auto": method = KernelAttachMethod.Auto; return true;
            case "netlink": method = KernelAttachMethod.Netlink; return true;
            case "ioctl": method = KernelAttachMethod.Ioctl; return true;
            default: method = KernelAttachMethod.Auto; return false;
        }
    }
}
