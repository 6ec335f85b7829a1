using System.Globalization;

namespace IserBlockd.Daemon.Configuration;

/// <summary>Which kernel block device a LUN is attached as: a fixed <c>/dev/nbdN</c> or the first free one
/// (<c>auto</c>), or a ublk device (<c>ublk</c> for the first free one, <c>/dev/ublkbN</c>).</summary>
public readonly record struct DeviceSelection(int? Index, bool Ublk = false)
{
    private const string NbdPrefix = "/dev/nbd";
    private const string UblkPrefix = "/dev/ublkb";

    public static DeviceSelection Auto => new(null);

    public bool IsAuto => Index is null;

    public override string ToString() => (Index, Ublk) switch
    {
        ({ } i, false) => NbdPrefix + i.ToString(CultureInfo.InvariantCulture),
        ({ } i, true) => UblkPrefix + i.ToString(CultureInfo.InvariantCulture),
        (null, true) => "ublk",
        _ => "auto",
    };

    /// <summary>What the configuration and the command line accept, for error messages.</summary>
    public const string Expected = "\"/dev/nbdN\", \"auto\", \"ublk\" or \"/dev/ublkbN\"";

    public static bool TryParse(string text, out DeviceSelection value)
    {
        value = Auto;
        switch (text)
        {
            case "auto":
                return true;
            case "ublk":
                value = new DeviceSelection(null, Ublk: true);
                return true;
        }
        var ublk = text.StartsWith(UblkPrefix, StringComparison.Ordinal);
        var prefix = ublk ? UblkPrefix : NbdPrefix;
        if (text.StartsWith(prefix, StringComparison.Ordinal)
            && int.TryParse(text.AsSpan(prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var index)
            && index.ToString(CultureInfo.InvariantCulture).Length == text.Length - prefix.Length)
        {
            value = new DeviceSelection(index, ublk);
            return true;
        }
        return false;
    }
}
