using System.Text.RegularExpressions;

namespace IserBlockd.Daemon.Configuration;

/// <summary>The three iSCSI name formats of RFC 7143 section 4.2.7.</summary>
public static partial class IscsiNameSyntax
{
    public const string Expected = "an iSCSI name: iqn.YYYY-MM.reversed.domain[:identifier], eui.<16 hex digits> or naa.<16 or 32 hex digits>";

    public static bool IsValid(string name) => name.Length <= 223 && NamePattern().IsMatch(name);

    [GeneratedRegex(@"^(iqn\.[0-9]{4}-[0-9]{2}(\.[A-Za-z0-9-]+)+(:[\x21-\x7e]*)?|eui\.[0-9A-Fa-f]{16}|naa\.([0-9A-Fa-f]{16}|[0-9A-Fa-f]{32}))$")]
    private static partial Regex NamePattern();
}
