namespace IserBlockd.BlockDev.Kernel.Nbd;

/// <summary>One entry of NBD_CMD_STATUS: a device index and whether it has a configuration (is connected,
/// or still waiting for a RECONFIGURE).</summary>
public readonly record struct NbdDeviceStatus(uint Index, bool Connected)
{
    public string DevicePath => "/dev/nbd" + Index;
}
