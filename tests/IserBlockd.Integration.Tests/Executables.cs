using System.Reflection;

namespace IserBlockd.Integration.Tests;

/// <summary>
/// Where the iserblockd and iserblockctl executables under test are: the build output of this
/// configuration, or a published (NativeAOT) directory named by ISERBLOCKD_BIN_DIR.
/// </summary>
internal static class Executables
{
    public static string Iserblockd => Find("iserblockd");

    public static string Iserblockctl => Find("iserblockctl");

    private static string Find(string name)
    {
        var published = Environment.GetEnvironmentVariable("ISERBLOCKD_BIN_DIR");
        if (!string.IsNullOrEmpty(published))
            return Path.Combine(published, name);
        var pattern = typeof(Executables).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .First(a => a.Key == "ExecutablesDirectory").Value!;
        var path = Path.Combine(string.Format(System.Globalization.CultureInfo.InvariantCulture, pattern, name), name);
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path} is not built; build tests/IserBlockd.Integration.Tests (it builds the executables)");
        return path;
    }
}
