using IserBlockd.Rdma.Interop;
using IserBlockd.Primitives.Native;

namespace IserBlockd.Rdma;

/// <summary>
/// An RDMA-CM event, copied out of librdmacm's event (which is acknowledged at once so that destroying an id
/// never waits for the application).
/// </summary>
public sealed class RdmaCmEvent
{
    internal RdmaCmEvent(RdmaCmEventType type, int status, byte[] privateData, byte responderResources, byte initiatorDepth,
        RdmaCmId? request)
    {
        Type = type;
        Status = status;
        PrivateData = privateData;
        ResponderResources = responderResources;
        InitiatorDepth = initiatorDepth;
        ConnectionRequest = request;
    }

    public RdmaCmEventType Type { get; }

    /// <summary>0, a negative errno, or (for <see cref="RdmaCmEventType.Rejected"/>) the IB CM reject reason.</summary>
    public int Status { get; }

    /// <summary>The private data carried by a connect request, response, reject or establishment (RoCE/IB pad it with zeros).</summary>
    public ReadOnlyMemory<byte> PrivateData { get; }

    /// <summary>For a connect request: RDMA READs the requester accepts as responder.</summary>
    public byte ResponderResources { get; }

    /// <summary>For a connect request: RDMA READs the requester will issue.</summary>
    public byte InitiatorDepth { get; }

    /// <summary>For <see cref="RdmaCmEventType.ConnectRequest"/> on a listening id: the new id to accept or reject.</summary>
    public RdmaCmId? ConnectionRequest { get; }

    public override string ToString() => Status == 0 ? Name(Type) : $"{Name(Type)} (status {DescribeStatus(Type, Status)})";

    /// <summary>The C name of an event type, e.g. RDMA_CM_EVENT_ADDR_ERROR.</summary>
    public static string Name(RdmaCmEventType type) => type switch
    {
        RdmaCmEventType.AddressResolved => "RDMA_CM_EVENT_ADDR_RESOLVED",
        RdmaCmEventType.AddressError => "RDMA_CM_EVENT_ADDR_ERROR",
        RdmaCmEventType.RouteResolved => "RDMA_CM_EVENT_ROUTE_RESOLVED",
        RdmaCmEventType.RouteError => "RDMA_CM_EVENT_ROUTE_ERROR",
        RdmaCmEventType.ConnectRequest => "RDMA_CM_EVENT_CONNECT_REQUEST",
        RdmaCmEventType.ConnectResponse => "RDMA_CM_EVENT_CONNECT_RESPONSE",
        RdmaCmEventType.ConnectError => "RDMA_CM_EVENT_CONNECT_ERROR",
        RdmaCmEventType.Unreachable => "RDMA_CM_EVENT_UNREACHABLE",
        RdmaCmEventType.Rejected => "RDMA_CM_EVENT_REJECTED",
        RdmaCmEventType.Established => "RDMA_CM_EVENT_ESTABLISHED",
        RdmaCmEventType.Disconnected => "RDMA_CM_EVENT_DISCONNECTED",
        RdmaCmEventType.DeviceRemoval => "RDMA_CM_EVENT_DEVICE_REMOVAL",
        RdmaCmEventType.MulticastJoin => "RDMA_CM_EVENT_MULTICAST_JOIN",
        RdmaCmEventType.MulticastError => "RDMA_CM_EVENT_MULTICAST_ERROR",
        RdmaCmEventType.AddressChange => "RDMA_CM_EVENT_ADDR_CHANGE",
        RdmaCmEventType.TimewaitExit => "RDMA_CM_EVENT_TIMEWAIT_EXIT",
        _ => $"RDMA-CM event {(int)type}",
    };

    /// <summary>Explains a status: errno names for negative values, IB CM reject reasons for rejections.</summary>
    public static string DescribeStatus(RdmaCmEventType type, int status)
    {
        if (status < 0) return Errno.Describe(-status);
        if (type != RdmaCmEventType.Rejected) return status.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return status switch
        {
            1 => "reject reason 1: no QP available",
            3 => "reject reason 3: no resources",
            4 => "reject reason 4: timeout",
            5 => "reject reason 5: unsupported request",
            8 => "reject reason 8: invalid service ID - nothing listens on that port",
            10 => "reject reason 10: stale connection",
            28 => "reject reason 28: rejected by the peer application",
            _ => $"reject reason {status}",
        };
    }
}
