namespace IserBlockd.Daemon.Hosting;

/// <summary>open-iscsi's /etc/iscsi/initiatorname.iscsi ("InitiatorName=iqn...").</summary>
public static class InitiatorNameFile
{
    public const string Path = "/etc/iscsi/initiatorname.iscsi";

    public static string? TryRead()
    {
        try
        {
            foreach (var line in File.ReadLines(Path))
            {
                var trimmed = line.Trim();
                if (trimmed.StartsWith("InitiatorName=", StringComparison.Ordinal))
                    return trimmed["InitiatorName=".Length..].Trim();
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return null;
    }
}
