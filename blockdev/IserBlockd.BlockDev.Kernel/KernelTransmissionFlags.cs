namespace IserBlockd.BlockDev.Kernel;

/// <summary>NBD transmission flags (NBD protocol, linux/nbd.h) the kernel is given for a device.</summary>
public static class KernelTransmissionFlags
{
    public const ulong HasFlags = 1 << 0;
    public const ulong ReadOnly = 1 << 1;
    public const ulong SendFlush = 1 << 2;
    public const ulong SendFua = 1 << 3;
    public const ulong Rotational = 1 << 4;
    public const ulong SendTrim = 1 << 5;
    public const ulong SendWriteZeroes = 1 << 6;
    public const ulong CanMultiConn = 1 << 8;

    public static ulong From(BlockDeviceFeatures features)
    {
        var flags = HasFlags;
        if (features.HasFlag(BlockDeviceFeatures.ReadOnly)) flags |= ReadOnly;
        if (features.HasFlag(BlockDeviceFeatures.Flush)) flags |= SendFlush;
        if (features.HasFlag(BlockDeviceFeatures.Fua)) flags |= SendFua;
        if (features.HasFlag(BlockDeviceFeatures.Rotational)) flags |= Rotational;
        if (features.HasFlag(BlockDeviceFeatures.Trim)) flags |= SendTrim;
        if (features.HasFlag(BlockDeviceFeatures.WriteZeroes)) flags |= SendWriteZeroes;
        if (features.HasFlag(BlockDeviceFeatures.MultiConnection)) flags |= CanMultiConn;
        return flags;
    }
}
