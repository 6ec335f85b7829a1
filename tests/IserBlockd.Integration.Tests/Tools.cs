using IserBlockd.TestSupport;

namespace IserBlockd.Integration.Tests;

/// <summary>Real NBD clients, run to completion; a failure shows their output.</summary>
internal static class Tools
{
    public static async Task<string> RunAsync(string tool, params string[] args)
    {
        var result = await ExternalProcess.RunAsync(tool, args, TimeSpan.FromMinutes(5));
        return result.EnsureSuccess().StandardOutput;
    }

    public static byte[] RandomBytes(int length)
    {
        var bytes = new byte[length];
        Random.Shared.NextBytes(bytes);
        return bytes;
    }

    /// <summary>fio's nbd engine with crc32c verification; returns fio's output, which must show err=0.</summary>
    public static async Task<string> FioVerifyAsync(string uri, string size, int iodepth = 32, string rw = "randwrite", string bs = "4k", params string[] extra)
    {
        var output = await RunAsync("fio", ["--name=verify", "--ioengine=nbd", $"--uri={uri}", $"--rw={rw}", $"--bs={bs}",
            $"--iodepth={iodepth}", $"--size={size}", "--verify=crc32c", "--verify_fatal=1", "--do_verify=1", .. extra]);
        Assert.Contains("err= 0", output);
        Assert.DoesNotContain("verify: bad", output);
        return output;
    }
}
