using IserBlockd.Rdma.Interop;

namespace IserBlockd.Rdma.Tests;

public sealed class MemoryWindowKeyTests
{
    [Theory]
    // verbs.h ibv_inc_rkey: the low 8 bits (the consumer's key) go up by one and wrap; the index bits stay.
    [InlineData(0x00001200u, 0x00001201u)]
    [InlineData(0x123456feu, 0x123456ffu)]
    [InlineData(0x123456ffu, 0x12345600u)]
    [InlineData(0xffffffffu, 0xffffff00u)]
    public void The_next_key_of_a_window_changes_only_its_low_byte(uint key, uint next) =>
        Assert.Equal(next, IbvMw.NextRemoteKey(key));

    [Fact]
    public void A_key_comes_back_only_after_256_binds()
    {
        var key = 0xabcdef17u;
        var seen = new HashSet<uint>();
        for (var i = 0; i < 256; i++) Assert.True(seen.Add(key = IbvMw.NextRemoteKey(key)));
        Assert.Equal(0xabcdef17u, key);
    }
}
