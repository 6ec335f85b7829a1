namespace IserBlockd.Daemon.Luns;

/// <summary>The kinds of block I/O a LUN is asked for, as metrics and <c>iserblockctl stats</c> break them down.</summary>
public enum LunIoKind
{
    Read,
    Write,
    Flush,
    Trim,
    WriteZeroes,
}

public static class LunIoKindNames
{
    public const int Count = 5;

    /// <summary>The label value in metrics and JSON: read, write, flush, trim, write_zeroes.</summary>
    public static string ToName(this LunIoKind kind) => kind switch
    {
        LunIoKind.Read => "read",
        LunIoKind.Write => "write",
        LunIoKind.Flush => "flush",
        LunIoKind.Trim => "trim",
        _ => "write_zeroes",
    };
}
