using IserBlockd.Rdma.Handles;

namespace IserBlockd.Rdma;

/// <summary>Counters for leak checks.</summary>
public static class RdmaDiagnostics
{
    /// <summary>
    /// rdma-core objects (event channels, cm ids, PDs, completion channels, CQs, QPs, MRs, device lists) currently
    /// owned through the bindings in this process. Zero after a clean teardown.
    /// </summary>
    public static long LiveNativeObjects => RdmaSafeHandle.LiveCount;
}
