using System.Buffers.Binary;
using System.Text;
using IserBlockd.BlockDev.Nbd.Protocol;

namespace IserBlockd.Fuzz;

/// <summary>NBD client byte streams as nbdinfo, nbdcopy and qemu-img send them (the unit tests' handshakes).</summary>
public static class NbdSeeds
{
    public static byte[] ClientFlags(uint flags)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, flags);
        return b;
    }

    public static byte[] Option(NbdOption option, ReadOnlySpan<byte> data)
    {
        var b = new byte[NbdOptionHeader.Size + data.Length];
        new NbdOptionHeader(option, (uint)data.Length).Write(b);
        data.CopyTo(b.AsSpan(NbdOptionHeader.Size));
        return b;
    }

    /// <summary>NBD_OPT_INFO / NBD_OPT_GO data: name, then the info types asked for.</summary>
    public static byte[] InfoRequest(string name, params ushort[] infos)
    {
        var nameBytes = Encoding.UTF8.GetBytes(name);
        var b = new byte[4 + nameBytes.Length + 2 + 2 * infos.Length];
        BinaryPrimitives.WriteUInt32BigEndian(b, (uint)nameBytes.Length);
        nameBytes.CopyTo(b, 4);
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(4 + nameBytes.Length), (ushort)infos.Length);
        for (var i = 0; i < infos.Length; i++) BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(6 + nameBytes.Length + 2 * i), infos[i]);
        return b;
    }

    public static byte[] Request(NbdCommand command, ulong offset, uint length, NbdCommandFlags flags = NbdCommandFlags.None, ulong handle = 1)
    {
        var b = new byte[NbdRequest.Size];
        new NbdRequest(flags, command, handle, offset, length).Write(b);
        return b;
    }

    public static byte[] Concat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();

    /// <summary>nbdinfo/nbdcopy style: structured replies, INFO then GO for the default export, then I/O.</summary>
    public static byte[] ModernSession() => Concat(
        ClientFlags(3),
        Option(NbdOption.StructuredReply, []),
        Option(NbdOption.List, []),
        Option(NbdOption.Info, InfoRequest("", 0, 1, 2, 3)),
        Option(NbdOption.Go, InfoRequest("", 3)),
        Request(NbdCommand.Write, 0, 512, NbdCommandFlags.Fua), new byte[512],
        Request(NbdCommand.Read, 0, 4096, handle: 2),
        Request(NbdCommand.Flush, 0, 0, handle: 3),
        Request(NbdCommand.Trim, 4096, 8192, handle: 4),
        Request(NbdCommand.WriteZeroes, 65536, 65536, NbdCommandFlags.NoHole, handle: 5),
        Request(NbdCommand.BlockStatus, 0, 1 << 20, handle: 6),
        Request(NbdCommand.Cache, 0, 4096, handle: 7),
        Request(NbdCommand.Read, 1 << 20, 512, NbdCommandFlags.DontFragment, handle: 8),
        Request(NbdCommand.Disconnect, 0, 0, handle: 9));

    /// <summary>The kernel client's and old tools' way: NBD_OPT_EXPORT_NAME, simple replies.</summary>
    public static byte[] ExportNameSession() => Concat(
        ClientFlags(1),
        Option(NbdOption.ExportName, Encoding.UTF8.GetBytes("")),
        Request(NbdCommand.Read, 0, 512),
        Request(NbdCommand.Write, 512, 1024, handle: 2), new byte[1024],
        Request(NbdCommand.Disconnect, 0, 0, handle: 3));

    /// <summary>Options the server refuses or does not know, then an abort.</summary>
    public static byte[] Refusals() => Concat(
        ClientFlags(3),
        Option(NbdOption.StartTls, []),
        Option(NbdOption.ListMetaContext, InfoRequest("", 0)),
        Option(NbdOption.SetMetaContext, InfoRequest("", 0)),
        Option(NbdOption.Info, InfoRequest("missing")),
        Option((NbdOption)99, [1, 2, 3]),
        Option(NbdOption.Abort, []));
}
