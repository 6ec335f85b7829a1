namespace IserBlockd.BlockDev;

/// <summary>
/// How a FUA request is made good on an <see cref="IBlockDevice"/>: a WRITE carries the device's own FUA
/// where it has one (<see cref="BlockDeviceFeatures.Fua"/>); anything else (a WRITE without it, TRIM,
/// WRITE_ZEROES, which have no FUA bit) is followed by a flush before it is answered. Every front end
/// (the NBD server, ublk) decides it here, and devices never emulate FUA themselves.
/// </summary>
public static class FuaEmulation
{
    /// <summary>Pass <c>fua</c> on to <see cref="IBlockDevice.WriteAsync"/>.</summary>
    public static bool HasNativeFua(this IBlockDevice device) => (device.Features & BlockDeviceFeatures.Fua) != 0;

    /// <summary>A FUA request needs a flush after it: the device has a volatile cache, and the request is
    /// not a WRITE that carried the device's own FUA.</summary>
    public static bool NeedsFlushForFua(this IBlockDevice device, bool isWrite) =>
        (device.Features & BlockDeviceFeatures.Flush) != 0 && !(isWrite && device.HasNativeFua());
}
