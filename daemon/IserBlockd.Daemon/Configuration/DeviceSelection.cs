using System.Globalization;

namespace IserBlockd.Daemon.Configuration;

/// <summary>Which kernel NBD device a LUN is attached to: a fixed <c>/dev/nbdN</c> or the first free one.</summary>
public readonly record struct DeviceSelection(int? Index)
{
    public static DeviceSelection Auto => new(null);

    public bool IsAuto => Index is null;

    public override string ToString() => Index is { } i ? $"/dev/nbd{i.ToString(CultureInfo.InvariantCulture)}" : "auto";

    public static bool TryParse(string text, out DeviceSelection value)
    {
        value = Auto;
        if (text == "auto")
            return true;
        const string prefix = "/dev/nbd";
        if (text.StartsWith(prefix, StringComparison.Ordinal)
            && int.TryParse(text.AsSpan(prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var index)
            && index.ToString(CultureInfo.InvariantCulture).Length == text.Length - prefix.Length)
        {
            value = new DeviceSelection(index);
            return true;
        }
        return false;
    }
}
