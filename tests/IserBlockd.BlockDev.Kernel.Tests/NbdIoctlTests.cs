using IserBlockd.BlockDev.Kernel.Ioctl;

namespace IserBlockd.BlockDev.Kernel.Tests;

public class NbdIoctlTests
{
    // _IOC(dir, type, nr, size) = dir << 30 | size << 16 | type << 8 | nr (asm-generic/ioctl.h);
    // _IO(type, nr) has dir _IOC_NONE = 0 and size 0.
    private static nuint IoFromHeader(uint type, uint nr) => (nuint)((0u << 30) | (0u << 16) | (type << 8) | nr);

    [Theory]
    [InlineData("NBD_SET_SOCK", 0, 0xab00u)]
    [InlineData("NBD_SET_BLKSIZE", 1, 0xab01u)]
    [InlineData("NBD_SET_SIZE", 2, 0xab02u)]
    [InlineData("NBD_DO_IT", 3, 0xab03u)]
    [InlineData("NBD_CLEAR_SOCK", 4, 0xab04u)]
    [InlineData("NBD_CLEAR_QUE", 5, 0xab05u)]
    [InlineData("NBD_SET_SIZE_BLOCKS", 7, 0xab07u)]
    [InlineData("NBD_DISCONNECT", 8, 0xab08u)]
    [InlineData("NBD_SET_TIMEOUT", 9, 0xab09u)]
    [InlineData("NBD_SET_FLAGS", 10, 0xab0au)]
    public void Ioctl_numbers_match_linux_nbd_h(string name, uint nr, uint value)
    {
        var ours = name switch
        {
            "NBD_SET_SOCK" => NbdIoctl.SetSocket,
            "NBD_SET_BLKSIZE" => NbdIoctl.SetBlockSize,
            "NBD_SET_SIZE" => NbdIoctl.SetSize,
            "NBD_DO_IT" => NbdIoctl.DoIt,
            "NBD_CLEAR_SOCK" => NbdIoctl.ClearSocket,
            "NBD_CLEAR_QUE" => NbdIoctl.ClearQueue,
            "NBD_SET_SIZE_BLOCKS" => NbdIoctl.SetSizeBlocks,
            "NBD_DISCONNECT" => NbdIoctl.Disconnect,
            "NBD_SET_TIMEOUT" => NbdIoctl.SetTimeout,
            "NBD_SET_FLAGS" => NbdIoctl.SetFlags,
            _ => throw new ArgumentException(name),
        };
        Assert.Equal(IoFromHeader(0xab, nr), ours);
        Assert.Equal((nuint)value, ours);
    }

    [Fact]
    public void Header_on_this_machine_declares_the_same_numbers()
    {
        // when the kernel headers are installed (linux-libc-dev), read the definitions themselves
        const string header = "/usr/include/linux/nbd.h";
        if (!File.Exists(header)) return;
        var text = File.ReadAllText(header);
        Assert.Matches(@"#define\s+NBD_SET_SOCK\s+_IO\(\s*0xab,\s*0\s*\)", text);
        Assert.Matches(@"#define\s+NBD_DO_IT\s+_IO\(\s*0xab,\s*3\s*\)", text);
        Assert.Matches(@"#define\s+NBD_SET_SIZE_BLOCKS\s+_IO\(\s*0xab,\s*7\s*\)", text);
        Assert.Matches(@"#define\s+NBD_SET_FLAGS\s+_IO\(\s*0xab,\s*10\s*\)", text);
    }
}
