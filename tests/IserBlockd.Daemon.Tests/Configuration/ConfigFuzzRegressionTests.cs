using IserBlockd.Daemon.Configuration;

namespace IserBlockd.Daemon.Tests.Configuration;

/// <summary>Configuration files the fuzzer (tests/fuzz, target config) found to crash the loader.</summary>
public sealed class ConfigFuzzRegressionTests
{
    [Theory]
    [InlineData("{\"nodes\x93\": []}")]                 // in a property name (the fuzzer's find: InvalidOperationException)
    [InlineData("{\"nodes\": [{\"name\": \"d\x93\"}]}")]   // in a string value
    public void Invalid_utf8_is_a_config_error_naming_the_offset(string latin1)
    {
        var bytes = System.Text.Encoding.Latin1.GetBytes(latin1);
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(bytes, "bad.json"));
        var error = Assert.Single(e.Errors);
        Assert.Contains("not valid UTF-8", error.Message);
        Assert.Contains($"offset {Array.IndexOf(bytes, (byte)0x93)}", error.Message);
    }
}
