using System.Reflection;
using IserBlockd.TestSupport;

namespace IserBlockd.Iscsi.Tests.Cli;

/// <summary>Runs the iserblockctl executable built with this test project (the apphost next to its dll).</summary>
public static class Iserblockctl
{
    public static string Path { get; } = typeof(Iserblockctl).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "IserblockctlPath").Value!;

    public static Task<ProcessResult> RunAsync(params string[] args)
    {
        if (!File.Exists(Path)) throw new FileNotFoundException($"iserblockctl was not built at {Path}");
        return ExternalProcess.RunAsync(Path, args, TimeSpan.FromSeconds(60));
    }
}
