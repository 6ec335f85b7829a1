using System.Runtime.InteropServices;

namespace IserBlockd.BlockDev.Kernel.Native;

/// <summary>errno values as text a person understands (strerror plus the symbolic name).</summary>
internal static class Errno
{
    public static int Last => Marshal.GetLastPInvokeError();

    public static string Describe(int errno) => $"{Marshal.GetPInvokeErrorMessage(errno)} ({Name(errno)})";

    public static string Name(int errno) => errno switch
    {
        1 => "EPERM", 2 => "ENOENT", 4 => "EINTR", 5 => "EIO", 9 => "EBADF", 11 => "EAGAIN", 12 => "ENOMEM",
        13 => "EACCES", 16 => "EBUSY", 17 => "EEXIST", 19 => "ENODEV", 22 => "EINVAL", 25 => "ENOTTY",
        28 => "ENOSPC", 34 => "ERANGE", 71 => "EPROTO", 90 => "EMSGSIZE", 93 => "EPROTONOSUPPORT",
        95 => "EOPNOTSUPP", 97 => "EAFNOSUPPORT", 110 => "ETIMEDOUT",
        _ => "errno " + errno,
    };
}
