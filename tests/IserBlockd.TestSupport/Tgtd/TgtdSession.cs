using System.Globalization;
using System.Text.RegularExpressions;

namespace IserBlockd.TestSupport.Tgtd;

/// <summary>An I_T nexus as <c>tgtadm --mode target --op show</c> lists it.</summary>
public sealed record TgtdSession(long Sid, string InitiatorName, IReadOnlyList<string> ConnectionAddresses)
{
    internal static IReadOnlyList<TgtdSession> Parse(string output, int tid)
    {
        // Cut out "Target <tid>: ..." up to the next "Target N:" line, then its "I_T nexus information" part.
        var targets = Regex.Split(output, @"^Target (?=\d+: )", RegexOptions.Multiline);
        var block = targets.FirstOrDefault(t => t.StartsWith(tid.ToString(CultureInfo.InvariantCulture) + ":", StringComparison.Ordinal));
        if (block == null) return [];
        var start = block.IndexOf("I_T nexus information:", StringComparison.Ordinal);
        var end = block.IndexOf("LUN information:", StringComparison.Ordinal);
        if (start < 0) return [];
        var nexusText = block[start..(end > start ? end : block.Length)];
        var sessions = new List<TgtdSession>();
        foreach (var part in Regex.Split(nexusText, @"^\s*I_T nexus: ", RegexOptions.Multiline).Skip(1))
        {
            var sid = long.Parse(Regex.Match(part, @"^\d+").Value, CultureInfo.InvariantCulture);
            var initiator = Regex.Match(part, @"Initiator: (\S+)").Groups[1].Value;
            var addresses = Regex.Matches(part, @"IP Address: (\S+)").Select(m => m.Groups[1].Value).ToList();
            sessions.Add(new TgtdSession(sid, initiator, addresses));
        }
        return sessions;
    }
}
