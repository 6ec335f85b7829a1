using System.Globalization;
using IserBlockd.TestSupport;
using Xunit.Abstractions;

namespace IserBlockd.Integration.Tests;

/// <summary>
/// A thin tgtd LUN through <c>iserblockd export</c>: the holes GET LBA STATUS reports reach NBD clients as
/// <c>base:allocation</c> (nbdinfo --map), and nbdcopy and qemu-img convert skip them, which shows in the
/// bytes tgtd reads.
/// </summary>
[Trait("Category", "RealPeer")]
public sealed class ExportSparseTests(ITestOutputHelper output)
{
    private const long Size = 256L << 20;
    private static readonly (long Offset, int Length)[] DataRegions = [(16L << 20, 1 << 20), (100L << 20, 2 << 20), (Size - (1 << 20), 1 << 20)];

    [Fact]
    public async Task Nbdinfo_map_shows_holes_and_nbdcopy_round_trips_sparse_and_dense_files_skipping_holes()
    {
        await using var target = await TestTarget.StartAsync(thin: true, (1, Size, 512));
        using var dir = new TempDirectory("sparse");
        await using var export = await ExportProcess.StartAsync(target, 1, "--socket", dir.File("nbd.sock"));

        var empty = await MapAsync(export.Ready);
        Assert.All(empty, e => Assert.Contains("hole", e.Description));
        Assert.Equal(Size, empty.Sum(e => e.Length));

        // sparse file → export → file
        var sparse = dir.File("sparse.bin");
        WriteSparseFile(sparse);
        await Tools.RunAsync("nbdcopy", sparse, export.Ready);
        var map = await MapAsync(export.Ready);
        var data = map.Where(e => !e.Description.Contains("hole")).Sum(e => e.Length);
        output.WriteLine($"after the sparse copy: {data} bytes of data in {map.Count} extents");
        Assert.InRange(data, DataRegions.Sum(r => (long)r.Length), DataRegions.Sum(r => (long)r.Length) + (4 << 20));
        Assert.Contains(map, e => e.Offset <= 16L << 20 && e.Offset + e.Length > 16L << 20 && !e.Description.Contains("hole"));

        var before = target.Server.BytesReadByTarget();
        await Tools.RunAsync("nbdcopy", export.Ready, dir.File("sparse-back.bin"));
        var read = target.Server.BytesReadByTarget() - before;
        output.WriteLine($"nbdcopy from the export: tgtd read {read} bytes for a {Size}-byte LUN");
        Assert.True(read < 32L << 20, $"tgtd read {read} bytes: the holes were not skipped");
        AssertSameFile(sparse, dir.File("sparse-back.bin"));
        before = target.Server.BytesReadByTarget();
        await Tools.RunAsync("nbdcopy", "--no-extents", export.Ready, dir.File("sparse-every-byte.bin"));
        var everyByte = target.Server.BytesReadByTarget() - before;
        output.WriteLine($"nbdcopy --no-extents from the export: tgtd read {everyByte} bytes");
        Assert.True(everyByte >= Size, $"without extents tgtd read only {everyByte} bytes");

        // dense file → export → file
        var dense = dir.File("dense.bin");
        using (var f = File.Create(dense))
            for (var i = 0; i < Size >> 20; i++) f.Write(Tools.RandomBytes(1 << 20));
        await Tools.RunAsync("nbdcopy", dense, export.Ready);
        await Tools.RunAsync("nbdcopy", export.Ready, dir.File("dense-back.bin"));
        AssertSameFile(dense, dir.File("dense-back.bin"));

        // and back to sparse: nbdcopy zeroes the holes (WRITE_ZEROES longer than the maximum block size),
        // which the thin LUN deallocates again
        await Tools.RunAsync("nbdcopy", sparse, export.Ready);
        await Tools.RunAsync("nbdcopy", export.Ready, dir.File("sparse-again.bin"));
        AssertSameFile(sparse, dir.File("sparse-again.bin"));
        Assert.Contains(await MapAsync(export.Ready), e => e.Description.Contains("hole") && e.Length >= 64L << 20);
        Assert.Equal(0, await export.StopAsync());
    }

    [Fact]
    public async Task Qemu_img_convert_of_a_qcow2_with_holes_into_the_export_and_back_compares_equal()
    {
        await using var target = await TestTarget.StartAsync(thin: true, (1, Size, 512));
        using var dir = new TempDirectory("qcow2");
        await using var export = await ExportProcess.StartAsync(target, 1, "--socket", dir.File("nbd.sock"));

        var source = dir.File("source.qcow2");
        await Tools.RunAsync("qemu-img", "create", "-q", "-f", "qcow2", source, Size.ToString(CultureInfo.InvariantCulture));
        foreach (var (offset, length) in DataRegions)
            await Tools.RunAsync("qemu-io", "-f", "qcow2", "-c", $"write -P 0x{offset >> 20 & 0xff:x2} {offset} {length}", source);

        await Tools.RunAsync("qemu-img", "convert", "-n", "-f", "qcow2", "-O", "raw", source, export.Ready);
        var before = target.Server.BytesReadByTarget();
        var back = dir.File("back.qcow2");
        await Tools.RunAsync("qemu-img", "convert", "-f", "raw", "-O", "qcow2", export.Ready, back);
        var read = target.Server.BytesReadByTarget() - before;
        output.WriteLine($"qemu-img convert from the export: tgtd read {read} bytes for a {Size}-byte LUN");
        Assert.True(read < 32L << 20, $"tgtd read {read} bytes: the holes were not skipped");

        var compare = await Tools.RunAsync("qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", source, back);
        Assert.Contains("Images are identical", compare);
        var map = await Tools.RunAsync("qemu-img", "map", "--output=json", "-f", "qcow2", back);
        Assert.Contains("\"data\": false", map); // the copy kept the holes
        Assert.Equal(0, await export.StopAsync());
    }

    private static void WriteSparseFile(string path)
    {
        using var f = new FileStream(path, FileMode.Create, FileAccess.Write);
        f.SetLength(Size);
        foreach (var (offset, length) in DataRegions)
        {
            f.Position = offset;
            f.Write(Tools.RandomBytes(length));
        }
    }

    private static void AssertSameFile(string expected, string actual)
    {
        using var a = File.OpenRead(expected);
        using var b = File.OpenRead(actual);
        Assert.Equal(a.Length, b.Length);
        var x = new byte[1 << 20];
        var y = new byte[1 << 20];
        for (long position = 0; position < a.Length; position += x.Length)
        {
            a.ReadExactly(x);
            b.ReadExactly(y);
            Assert.True(x.AsSpan().SequenceEqual(y), $"{actual} differs from {expected} in the MiB at {position}");
        }
    }

    private sealed record Extent(long Offset, long Length, string Description);

    /// <summary>nbdinfo --map: lines of offset, length, type number and description ("hole,zero", "data").</summary>
    private async Task<List<Extent>> MapAsync(string uri)
    {
        var text = await Tools.RunAsync("nbdinfo", "--map", uri);
        output.WriteLine(text);
        return text.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Select(f => new Extent(long.Parse(f[0], CultureInfo.InvariantCulture), long.Parse(f[1], CultureInfo.InvariantCulture), f.Length > 3 ? f[3] : ""))
            .ToList();
    }
}
