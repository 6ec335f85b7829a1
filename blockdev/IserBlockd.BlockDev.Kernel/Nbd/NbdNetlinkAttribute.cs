namespace IserBlockd.BlockDev.Kernel.Nbd;

/// <summary>Attributes of the "nbd" family with the types the kernel's policy gives them (drivers/block/nbd.c).</summary>
internal static class NbdNetlinkAttribute
{
    public const ushort Index = 1;                 // u32
    public const ushort SizeBytes = 2;             // u64
    public const ushort BlockSizeBytes = 3;        // u64 (0 means 1024 to the kernel)
    public const ushort Timeout = 4;               // u64 seconds
    public const ushort ServerFlags = 5;           // u64: NBD transmission flags
    public const ushort ClientFlags = 6;           // u64: NBD_CFLAG_*
    public const ushort Sockets = 7;               // nested: NBD_SOCK_ITEM { NBD_SOCK_FD u32 }
    public const ushort DeadConnectionTimeout = 8; // u64 seconds
    public const ushort DeviceList = 9;            // nested: NBD_DEVICE_ITEM { NBD_DEVICE_INDEX u32, NBD_DEVICE_CONNECTED u8 }
    public const ushort BackendIdentifier = 10;    // string

    public const ushort SocketItem = 1;            // NBD_SOCK_ITEM
    public const ushort SocketFd = 1;              // NBD_SOCK_FD

    public const ushort DeviceItem = 1;            // NBD_DEVICE_ITEM
    public const ushort DeviceIndex = 1;           // NBD_DEVICE_INDEX
    public const ushort DeviceConnected = 2;       // NBD_DEVICE_CONNECTED
}
