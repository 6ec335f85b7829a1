namespace IserBlockd.Transport.Selection;

/// <summary>Which transport carries a session: the <c>transport</c> of a node in the configuration, <c>--transport</c> on the command line.</summary>
public enum IscsiTransportKind
{
    /// <summary>iSER when an RDMA device routes to the portal and the target accepts RDMAExtensions=Yes; TCP otherwise.</summary>
    Auto,
    Tcp,
    Iser,
}

public static class IscsiTransportKindNames
{
    public static string ToName(this IscsiTransportKind kind) => kind switch
    {
        IscsiTransportKind.Tcp => "tcp",
        IscsiTransportKind.Iser => "iser",
        _ => "auto",
    };

    public static bool TryParse(string? text, out IscsiTransportKind kind)
    {
        switch (text?.Trim().ToLowerInvariant())
        {
            case "tcp": kind = IscsiTransportKind.Tcp; return true;
            case "iser": kind = IscsiTransportKind.Iser; return true;
            case "auto": kind = IscsiTransportKind.Auto; return true;
            default: kind = IscsiTransportKind.Auto; return false;
        }
    }
}
