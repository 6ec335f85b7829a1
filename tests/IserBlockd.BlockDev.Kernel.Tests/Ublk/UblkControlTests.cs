using IserBlockd.BlockDev.Kernel.Ublk;

namespace IserBlockd.BlockDev.Kernel.Tests.Ublk;

public class UblkControlTests
{
    [Fact]
    public void Without_ublk_in_the_kernel_opening_the_control_device_says_so()
    {
        if (UblkControl.Available) return;   // a kernel with ublk: the VM scenario covers it
        var e = Assert.Throws<UblkException>(UblkControl.Open);
        Assert.Contains("/dev/ublk-control does not exist", e.Message);
        Assert.Contains("modprobe ublk_drv", e.Message);
        Assert.Null(KernelUblkDevice.FindByBackend("iserblockd:iqn.2003-01.org.example:x:0"));
    }
}
