namespace IserBlockd.Daemon.Configuration.Document;

/// <summary>CHAP credentials. Secrets are never in the configuration itself, only the files holding them.</summary>
public sealed class ChapDocument
{
    public string? User { get; set; }
    public string? SecretFile { get; set; }
    public string? TargetUser { get; set; }
    public string? TargetSecretFile { get; set; }
    /// <summary>CHAP_A preference list, e.g. ["SHA3-256", "SHA256", "SHA1", "MD5"] (the default).</summary>
    public List<string?>? Algorithms { get; set; }
}
