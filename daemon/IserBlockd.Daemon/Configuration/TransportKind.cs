namespace IserBlockd.Daemon.Configuration;

public enum TransportKind
{
    /// <summary>iSER when an RDMA device reaches the portal and the target accepts RDMAExtensions, else TCP.</summary>
    Auto,
    Tcp,
    Iser,
}

public static class TransportKindNames
{
    public static string ToConfigString(this TransportKind kind) => kind switch
    {
        TransportKind.Tcp => "tcp",
        TransportKind.Iser => "iser",
        _ => "auto",
    };

    public static bool TryParse(string text, out TransportKind kind)
    {
        switch (text)
        {
            case "tcp": kind = TransportKind.Tcp; return true;
            case "iser": kind = TransportKind.Iser; return true;
            case "auto": kind = TransportKind.Auto; return true;
            default: kind = TransportKind.Auto; return false;
        }
    }
}
