using IserBlockd.Iscsi.Negotiation;
using IserBlockd.Iscsi.Pdu;
using Xunit.Abstractions;

namespace IserBlockd.Iscsi.Tests.Integration;

/// <summary>
/// Data movement against real tgtd with small bursts, so that R2T sequences, unsolicited data and multi-PDU
/// Data-In really happen; every byte written is read back and compared.
/// </summary>
[Trait("Category", "RealPeer")]
public sealed class DataTransferTests(ITestOutputHelper output)
{
    private const int Burst = 16 * 1024;

    public static TheoryData<bool, bool> R2TMatrix => new() { { true, true }, { true, false }, { false, true }, { false, false } };

    [Theory]
    [MemberData(nameof(R2TMatrix))]
    public async Task Large_writes_and_reads_with_16KiB_bursts(bool initialR2T, bool immediateData)
    {
        await using var bed = await TgtdTestBed.StartAsync(output, configure: async t =>
        {
            await t.SetParameterAsync("InitialR2T", initialR2T ? "Yes" : "No");
            await t.SetParameterAsync("ImmediateData", immediateData ? "Yes" : "No");
            await t.SetParameterAsync("FirstBurstLength", Burst.ToString());
            await t.SetParameterAsync("MaxBurstLength", Burst.ToString());
        });
        var options = bed.Options(new OperationalOptions
        {
            InitialR2T = initialR2T,
            ImmediateData = immediateData,
            FirstBurstLength = Burst,
            MaxBurstLength = Burst,
            MaxRecvDataSegmentLength = 8192,
        });
        await using var session = await bed.LoginAsync(options);
        var p = session.Parameters;
        Assert.Equal(initialR2T, p.InitialR2T);
        Assert.Equal(immediateData, p.ImmediateData);
        Assert.Equal(Burst, p.MaxBurstLength);
        Assert.Equal(Burst, p.FirstBurstLength);
        Assert.Equal(8192, p.MaxSendDataSegmentLength); // tgtd does not declare it: the RFC default applies

        var lun = await session.OpenLunAsync(1);
        var data = new byte[1536 * 1024];
        Random.Shared.NextBytes(data);
        await lun.WriteAsync(100, data);
        var back = new byte[data.Length];
        await lun.ReadAsync(100, back);
        Assert.True(data.AsSpan().SequenceEqual(back), "data read back differs from data written");

        var t = bed.Transport;
        var unsolicited = initialR2T ? (immediateData ? 8192 : 0) : Burst;
        // Every solicited burst is at most MaxBurstLength: at least (size - unsolicited) / 16 KiB R2Ts.
        Assert.True(t.Received(IscsiOpcode.ReadyToTransfer) >= (data.Length - unsolicited) / Burst,
            $"only {t.Received(IscsiOpcode.ReadyToTransfer)} R2Ts for a {data.Length}-byte write");
        Assert.All(t.DataOutSizes.Keys, size => Assert.True(size <= 8192, $"a Data-Out of {size} bytes exceeds the target's 8192"));
        Assert.True(t.Received(IscsiOpcode.DataIn) >= data.Length / 8192, $"only {t.Received(IscsiOpcode.DataIn)} Data-In PDUs for {data.Length} bytes");
        if (immediateData) Assert.True(t.ImmediateDataCommands > 0);
        else Assert.Equal(0, t.ImmediateDataCommands);
        if (!initialR2T) Assert.True(t.UnsolicitedDataOuts > 0, "InitialR2T=No but no unsolicited Data-Out was sent");
        else Assert.Equal(0, t.UnsolicitedDataOuts);
        output.WriteLine($"R2T={t.Received(IscsiOpcode.ReadyToTransfer)} DataOut={t.Sent(IscsiOpcode.DataOut)} DataIn={t.Received(IscsiOpcode.DataIn)} immediate={t.ImmediateDataCommands} unsolicited={t.UnsolicitedDataOuts}");
    }

    [Fact]
    public async Task Header_and_data_digests()
    {
        await using var bed = await TgtdTestBed.StartAsync(output, configure: async t =>
        {
            await t.SetParameterAsync("HeaderDigest", "CRC32C");
            await t.SetParameterAsync("DataDigest", "CRC32C");
        });
        var options = bed.Options(new OperationalOptions { HeaderDigest = [DigestType.Crc32C], DataDigest = [DigestType.Crc32C] });
        await using var session = await bed.LoginAsync(options);
        Assert.Equal(DigestType.Crc32C, session.Parameters.HeaderDigest);
        Assert.Equal(DigestType.Crc32C, session.Parameters.DataDigest);
        // tgtd checks every digest it receives and sends digests on every PDU: a wrong or missing digest on either
        // side would fail the commands below (tgtd drops the connection; we fail it with a digest error).

        var lun = await session.OpenLunAsync(1);
        // Odd sizes exercise padding inside the digest: 3 blocks + the INQUIRY-style short transfers above.
        foreach (var blocks in new[] { 1, 3, 17, 1024 })
        {
            var data = new byte[blocks * 512];
            Random.Shared.NextBytes(data);
            await lun.WriteAsync((ulong)blocks * 7, data);
            var back = new byte[data.Length];
            await lun.ReadAsync((ulong)blocks * 7, back);
            Assert.True(data.AsSpan().SequenceEqual(back));
        }
    }

    [Fact]
    public async Task Digests_offered_but_declined_fall_back_to_none()
    {
        await using var bed = await TgtdTestBed.StartAsync(output);
        var options = bed.Options(new OperationalOptions { HeaderDigest = [DigestType.Crc32C, DigestType.None], DataDigest = [DigestType.Crc32C, DigestType.None] });
        await using var session = await bed.LoginAsync(options);
        Assert.Equal(DigestType.None, session.Parameters.HeaderDigest);
        await session.OpenLunAsync(1);
    }

    [Theory]
    [InlineData(512)]
    [InlineData(4096)]
    public async Task Logical_block_sizes(int blockSize)
    {
        await using var bed = await TgtdTestBed.StartAsync(output, size: 32 << 20, blockSize: blockSize);
        await using var session = await bed.LoginAsync();
        var lun = await session.OpenLunAsync(1);
        Assert.Equal((uint)blockSize, lun.BlockSize);
        Assert.Equal((ulong)(32 << 20) / (ulong)blockSize, lun.BlockCount);

        var data = new byte[blockSize * 33];
        Random.Shared.NextBytes(data);
        var lastLba = lun.BlockCount - 33;
        await lun.WriteAsync(lastLba, data, fua: true);
        var back = new byte[data.Length];
        await lun.ReadAsync(lastLba, back);
        Assert.True(data.AsSpan().SequenceEqual(back));
        await lun.SynchronizeCacheAsync();

        // The bytes are in the backing file at LBA * block size.
        await using var file = File.OpenRead(bed.BackingFile);
        file.Position = (long)lastLba * blockSize;
        var onDisk = new byte[data.Length];
        await file.ReadExactlyAsync(onDisk);
        Assert.True(data.AsSpan().SequenceEqual(onDisk));

        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await lun.ReadAsync(lun.BlockCount - 1, new byte[blockSize * 2]));
        await Assert.ThrowsAsync<ArgumentException>(async () => await lun.ReadAsync(0, new byte[blockSize + 1]));
    }
}
