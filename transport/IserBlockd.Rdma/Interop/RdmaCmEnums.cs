namespace IserBlockd.Rdma.Interop;

/// <summary><c>enum rdma_cm_event_type</c> from <c>rdma/rdma_cma.h</c>.</summary>
public enum RdmaCmEventType
{
    AddressResolved,
    AddressError,
    RouteResolved,
    RouteError,
    ConnectRequest,
    ConnectResponse,
    ConnectError,
    Unreachable,
    Rejected,
    Established,
    Disconnected,
    DeviceRemoval,
    MulticastJoin,
    MulticastError,
    AddressChange,
    TimewaitExit,
}

/// <summary><c>enum rdma_port_space</c>. iSER uses the TCP port space (the portal's TCP port number).</summary>
public enum RdmaPortSpace
{
    IpOverIb = 0x0002,
    Tcp = 0x0106,
    Udp = 0x0111,
    Ib = 0x013F,
}
