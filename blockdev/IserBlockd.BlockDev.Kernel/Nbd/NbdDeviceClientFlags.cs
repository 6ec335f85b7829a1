namespace IserBlockd.BlockDev.Kernel.Nbd;

/// <summary>NBD_ATTR_CLIENT_FLAGS (linux/nbd.h NBD_CFLAG_*).</summary>
[Flags]
public enum NbdDeviceClientFlags : ulong
{
    None = 0,
    /// <summary>Remove the nbdN device once it is disconnected and no longer open. The device still
    /// survives its server process dying: only NBD_CMD_DISCONNECT (or the dead-connection timeout
    /// expiring and the last opener closing) ends its configuration.</summary>
    DestroyOnDisconnect = 1 << 0,
    /// <summary>Disconnect when the last opener closes /dev/nbdN. Not for a daemon: unmounting would end it.</summary>
    DisconnectOnClose = 1 << 1,
}
