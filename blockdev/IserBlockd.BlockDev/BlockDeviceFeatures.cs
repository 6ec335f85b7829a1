namespace IserBlockd.BlockDev;

[Flags]
public enum BlockDeviceFeatures
{
    None = 0,
    ReadOnly = 1 << 0,
    /// <summary>The device has a volatile cache: FLUSH and FUA are meaningful.</summary>
    Flush = 1 << 1,
    Fua = 1 << 2,
    Trim = 1 << 3,
    WriteZeroes = 1 << 4,
    /// <summary>Several connections may use the device at once and see each other's
    /// completed writes, and a FLUSH on one covers writes completed on all (NBD_FLAG_CAN_MULTI_CONN).</summary>
    MultiConnection = 1 << 5,
    Rotational = 1 << 6,
    /// <summary>The device can tell allocated ranges from holes (<see cref="IBlockDevice.GetAllocationAsync"/>);
    /// without it every range is reported as data.</summary>
    AllocationStatus = 1 << 7,
    /// <summary>The device can be asked to read a range into its cache ahead of use
    /// (<see cref="IBlockDevice.PrefetchAsync"/>); without it a prefetch request succeeds doing nothing.</summary>
    Prefetch = 1 << 8,
}
