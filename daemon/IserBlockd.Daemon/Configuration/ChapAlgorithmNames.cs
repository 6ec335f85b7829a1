using IserBlockd.Iscsi.Security;

namespace IserBlockd.Daemon.Configuration;

/// <summary>
/// CHAP algorithm names as open-iscsi writes them in node.session.auth.chap_algs (SHA3-256, SHA256, SHA1, MD5;
/// we also accept SHA-256 and SHA-1), in order of preference: we offer them in that order and the target picks.
/// </summary>
public static class ChapAlgorithmNames
{
    public const string Expected = "a comma-separated list of SHA3-256, SHA256, SHA1 and MD5";

    /// <summary>All four, strongest first, as open-iscsi's iscsid.conf suggests. A target that numbers SHA-1 as 7
    /// (tgt) is logged into again without SHA-256 (see the iSCSI core's login).</summary>
    public static IReadOnlyList<ChapAlgorithm> Default { get; } = [ChapAlgorithm.Sha3_256, ChapAlgorithm.Sha256, ChapAlgorithm.Sha1, ChapAlgorithm.Md5];

    public static string Name(ChapAlgorithm algorithm) => algorithm switch
    {
        ChapAlgorithm.Sha3_256 => "SHA3-256",
        ChapAlgorithm.Sha256 => "SHA256",
        ChapAlgorithm.Sha1 => "SHA1",
        ChapAlgorithm.Md5 => "MD5",
        _ => ((int)algorithm).ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    public static string Format(IEnumerable<ChapAlgorithm> algorithms) => string.Join(',', algorithms.Select(Name));

    public static bool TryParse(string name, out ChapAlgorithm algorithm)
    {
        algorithm = name.Trim().ToUpperInvariant() switch
        {
            "SHA3-256" or "SHA3_256" => ChapAlgorithm.Sha3_256,
            "SHA256" or "SHA-256" => ChapAlgorithm.Sha256,
            "SHA1" or "SHA-1" => ChapAlgorithm.Sha1,
            "MD5" => ChapAlgorithm.Md5,
            _ => 0,
        };
        return algorithm != 0;
    }

    /// <summary>Parses a preference list (each name once, at least one, each available in this build's crypto).</summary>
    public static bool TryParseList(IEnumerable<string> names, out IReadOnlyList<ChapAlgorithm> algorithms, out string error)
    {
        var list = new List<ChapAlgorithm>();
        algorithms = list;
        error = "";
        foreach (var name in names)
        {
            if (!TryParse(name, out var algorithm))
            {
                error = $"unknown CHAP algorithm '{name.Trim()}': expected {Expected}";
                return false;
            }
            if (list.Contains(algorithm))
            {
                error = $"CHAP algorithm {Name(algorithm)} is listed twice";
                return false;
            }
            if (!Chap.IsSupported(algorithm))
            {
                error = $"CHAP algorithm {Name(algorithm)} is not available on this host (the system's OpenSSL lacks it)";
                return false;
            }
            list.Add(algorithm);
        }
        if (list.Count == 0)
        {
            error = $"no CHAP algorithm given: expected {Expected}";
            return false;
        }
        return true;
    }

    /// <summary>The command-line form: "SHA256,MD5".</summary>
    public static bool TryParseList(string text, out IReadOnlyList<ChapAlgorithm> algorithms, out string error) =>
        TryParseList(text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries), out algorithms, out error);
}
