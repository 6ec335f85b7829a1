using System.Reflection;

namespace IserBlockd.Daemon.Hosting;

public static class DaemonVersion
{
    public static string Text { get; } =
        typeof(DaemonVersion).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion?.Split('+')[0]
        ?? typeof(DaemonVersion).Assembly.GetName().Version?.ToString() ?? "0";
}
