namespace IserBlockd.Rdma;

/// <summary>One size class of a <see cref="RegisteredBufferPool"/>: <paramref name="Count"/> buffers of <paramref name="BufferSize"/> bytes.</summary>
public readonly record struct BufferSizeClass(int BufferSize, int Count);

/// <summary>The size classes of a <see cref="RegisteredBufferPool"/>; each class is one registered region.</summary>
public sealed class RegisteredBufferPoolOptions
{
    /// <summary>
    /// 4 KiB × 256, 64 KiB × 64, 256 KiB × 32, 1 MiB × 32: 45 MiB locked, enough for 32 concurrent 1 MiB commands
    /// and 256 small ones.
    /// </summary>
    public static RegisteredBufferPoolOptions Default { get; } = new()
    {
        SizeClasses = [new(4096, 256), new(64 * 1024, 64), new(256 * 1024, 32), new(1024 * 1024, 32)],
    };

    public IReadOnlyList<BufferSizeClass> SizeClasses { get; init; } = [];

    /// <summary>Alignment of every buffer (a power of two; page size by default).</summary>
    public int Alignment { get; init; } = 4096;

    internal BufferSizeClass[] Validate()
    {
        if (SizeClasses.Count == 0) throw new ArgumentException("A registered buffer pool needs at least one size class.");
        if (Alignment <= 0 || (Alignment & (Alignment - 1)) != 0)
            throw new ArgumentException($"Alignment {Alignment} is not a power of two.");
        var classes = SizeClasses.OrderBy(c => c.BufferSize).ToArray();
        for (var i = 0; i < classes.Length; i++)
        {
            var c = classes[i];
            if (c.BufferSize <= 0 || c.Count <= 0)
                throw new ArgumentException($"Size class {c.BufferSize} bytes × {c.Count}: size and count must be positive.");
            if (c.BufferSize % Alignment != 0)
                throw new ArgumentException($"Size class {c.BufferSize} bytes is not a multiple of the {Alignment}-byte alignment.");
            if (i > 0 && classes[i - 1].BufferSize == c.BufferSize)
                throw new ArgumentException($"Size class {c.BufferSize} bytes is listed twice.");
            if ((long)c.BufferSize * c.Count > int.MaxValue)
                throw new ArgumentException($"Size class {c.BufferSize} bytes × {c.Count} exceeds 2 GiB; split it.");
        }
        return classes;
    }
}
