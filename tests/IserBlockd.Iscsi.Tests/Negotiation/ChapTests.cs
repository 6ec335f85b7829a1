using IserBlockd.Iscsi.Login;
using IserBlockd.Iscsi.Security;

namespace IserBlockd.Iscsi.Tests.Negotiation;

public sealed class ChapTests
{
    // Vectors computed independently: python3 hashlib.<alg>(b'\x07' + b'verysecretvalue' + bytes.fromhex('0a0b0c0d0e0f'))
    [Theory]
    [InlineData(ChapAlgorithm.Md5, "d5fca5e0bcee6521adabd05614851711")]
    [InlineData(ChapAlgorithm.Sha1, "4c3d2b7004a2e1a7b84c291c9598c205dc607e93")]
    [InlineData(ChapAlgorithm.Sha256, "b1ff1832f6b1351cb883c1e5d460e8364cc0ed3d282f704308a6b3318e6cc290")]
    public void Response_is_hash_of_identifier_secret_challenge(ChapAlgorithm algorithm, string expected)
    {
        var response = Chap.ComputeResponse(algorithm, 7, ChapSecret.FromString("verysecretvalue"), Convert.FromHexString("0a0b0c0d0e0f"));
        Assert.Equal(expected, Convert.ToHexStringLower(response));
    }

    [Theory]
    [InlineData("0x0a0B0c", new byte[] { 0x0a, 0x0b, 0x0c })]
    [InlineData("0XabC", new byte[] { 0x0a, 0xbc })]
    [InlineData("0bCgsM", new byte[] { 0x0a, 0x0b, 0x0c })]
    public void Binary_values_decode(string text, byte[] bytes) => Assert.Equal(bytes, Chap.DecodeBinary(text, "CHAP_C"));

    [Theory]
    [InlineData("12345")]
    [InlineData("0xzz")]
    [InlineData("0b!!")]
    public void Bad_binary_values(string text) => Assert.Throws<TargetAuthenticationFailedException>(() => Chap.DecodeBinary(text, "CHAP_C"));

    [Fact]
    public void Secrets_do_not_print()
    {
        var credentials = new ChapCredentials("alice", ChapSecret.FromString("hunter2-hunter2"));
        Assert.DoesNotContain("hunter2", credentials.ToString());
        Assert.DoesNotContain("hunter2", credentials.Secret.ToString());
        Assert.Equal(ChapSecret.FromString("hunter2-hunter2"), credentials.Secret);
        Assert.Throws<ArgumentException>(() => new ChapSecret([]));
    }

    [Fact]
    public void Algorithm_numbers_are_the_iana_ones()
    {
        Assert.Equal("7,5,6", Chap.FormatAlgorithms([ChapAlgorithm.Sha256, ChapAlgorithm.Md5, ChapAlgorithm.Sha1]));
        Assert.True(Chap.IsSupported(ChapAlgorithm.Md5));
    }
}
