using System.Runtime.InteropServices;
using IserBlockd.Daemon.Native;
using IserBlockd.Primitives.Native;

namespace IserBlockd.Daemon.Mappings;

/// <summary>
/// Whether a kernel block device (/dev/nbdN, /dev/ublkbN) is in use by someone: mounted, held by device-mapper/md/swap (all of
/// which claim the device exclusively), or open by any other process. A device in use is left
/// configured when the daemon stops, so that the next daemon re-attaches it and its users see a pause
/// instead of I/O errors; an unused one is detached.
/// </summary>
public static class KernelDeviceUse
{
    public static bool IsInUse(uint index, out string why) => IsInUse("/dev/nbd" + index, out why);

    /// <summary>Whether the block device at <paramref name="path"/> (/dev/nbdN, /dev/ublkbN) is in use.</summary>
    public static bool IsInUse(string path, out string why)
    {
        var fd = LibC.open(path, LibC.O_RDONLY | LibC.O_EXCL | LibC.O_NONBLOCK | LibC.O_CLOEXEC);
        if (fd >= 0)
        {
            LibC.close(fd);
        }
        else if (Marshal.GetLastPInvokeError() == Errno.EBUSY)
        {
            why = $"{path} is mounted or claimed by another driver";
            return true;
        }

        var own = Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        foreach (var process in EnumerateDirectories("/proc"))
        {
            var pid = Path.GetFileName(process);
            if (pid == own || !pid.All(char.IsAsciiDigit)) continue;
            foreach (var link in EnumerateFiles(Path.Combine(process, "fd")))
            {
                string? target;
                try { target = new FileInfo(link).LinkTarget; }
                catch (IOException) { continue; }
                catch (UnauthorizedAccessException) { continue; }
                if (target == path || (target != null && target.StartsWith(path + "p", StringComparison.Ordinal)))
                {
                    why = $"{target} is open by process {pid}";
                    return true;
                }
            }
        }
        why = "";
        return false;
    }

    private static IEnumerable<string> EnumerateDirectories(string path)
    {
        try { return Directory.EnumerateDirectories(path).ToList(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return []; }
    }

    private static IEnumerable<string> EnumerateFiles(string path)
    {
        try { return Directory.EnumerateFileSystemEntries(path).ToList(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return []; }
    }
}
