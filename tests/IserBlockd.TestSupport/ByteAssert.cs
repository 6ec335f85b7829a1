using Xunit.Sdk;

namespace IserBlockd.TestSupport;

/// <summary>Checks on data read back, at memory speed (Assert.All calls a lambda and records a result per byte,
/// seconds for a few MiB), failing with the first offset that differs.</summary>
public static class ByteAssert
{
    public static void All(ReadOnlySpan<byte> data, int expected)
    {
        var at = data.IndexOfAnyExcept((byte)expected);
        if (at >= 0)
            throw new XunitException($"byte {at} of {data.Length} is 0x{data[at]:x2}, expected 0x{expected:x2} throughout");
    }
}
