using System.Runtime.InteropServices;
using System.Text;
using static IserBlockd.Primitives.Native.LibC;

namespace IserBlockd.BlockDev.Tests.Support;

/// <summary>Leaves a Unix socket file behind, as a crashed server would: bind(2) then close(2) without
/// unlink (.NET's Socket removes the file it bound when disposed, so it cannot do this).</summary>
internal static unsafe class StaleUnixSocket
{
    public static void Create(string path)
    {
        var fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0) throw new IOException($"socket failed: {Marshal.GetLastPInvokeError()}");
        try
        {
            var address = stackalloc byte[110]; // struct sockaddr_un: sa_family_t + 108-byte path
            new Span<byte>(address, 110).Clear();
            *(ushort*)address = 1;
            var length = Encoding.UTF8.GetBytes(path, new Span<byte>(address + 2, 107));
            if (bind(fd, address, (uint)(2 + length + 1)) != 0)
                throw new IOException($"bind({path}) failed: {Marshal.GetLastPInvokeError()}");
        }
        finally
        {
            close(fd);
        }
    }
}
