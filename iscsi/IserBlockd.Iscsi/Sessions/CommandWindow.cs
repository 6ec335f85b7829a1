namespace IserBlockd.Iscsi.Sessions;

/// <summary>
/// The command window of RFC 7143 §4.2.2.1: a non-immediate command may go out when CmdSN ≤ MaxCmdSN (serial
/// arithmetic). Updates that would shrink the window, or carry MaxCmdSN &lt; ExpCmdSN - 1, are ignored.
/// </summary>
internal struct CommandWindow
{
    public uint CmdSN;
    public uint ExpCmdSN;
    public uint MaxCmdSN;

    public void Reset(uint cmdSN, uint expCmdSN, uint maxCmdSN)
    {
        CmdSN = cmdSN;
        ExpCmdSN = expCmdSN;
        MaxCmdSN = maxCmdSN;
    }

    public readonly bool IsOpen => SerialNumber.LessThanOrEqual(CmdSN, MaxCmdSN);

    /// <summary>Commands the target accepts right now (0 when the window is closed).</summary>
    public readonly int Available => IsOpen ? (int)(MaxCmdSN - CmdSN + 1) : 0;

    public readonly int Size => (int)Math.Max(0, (long)(int)(MaxCmdSN - ExpCmdSN) + 1);

    /// <summary>Applies ExpCmdSN/MaxCmdSN from a target PDU; returns true when the window grew.</summary>
    public bool Update(uint expCmdSN, uint maxCmdSN)
    {
        if (SerialNumber.LessThan(maxCmdSN, expCmdSN - 1)) return false;
        var grew = false;
        if (SerialNumber.GreaterThan(expCmdSN, ExpCmdSN)) ExpCmdSN = expCmdSN;
        if (SerialNumber.GreaterThan(maxCmdSN, MaxCmdSN))
        {
            MaxCmdSN = maxCmdSN;
            grew = true;
        }
        return grew;
    }

    public uint Take() => CmdSN++;
}
