using System.Buffers.Binary;

namespace IserBlockd.BlockDev.Nbd.Protocol;

/// <summary>C: 32-bit client flags, the client's answer to the server greeting.</summary>
public readonly record struct NbdClientGreeting(NbdClientFlags Flags)
{
    public const int Size = 4;

    public void Write(Span<byte> destination) => BinaryPrimitives.WriteUInt32BigEndian(destination, (uint)Flags);

    public static NbdClientGreeting Read(ReadOnlySpan<byte> source) =>
        new((NbdClientFlags)BinaryPrimitives.ReadUInt32BigEndian(source));
}
