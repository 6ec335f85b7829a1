namespace IserBlockd.Rdma.Interop;

// Values from <infiniband/verbs.h> (rdma-core 44). C enums are 4-byte ints on Linux x86-64.

/// <summary><c>enum ibv_wc_status</c>: the outcome of a work request.</summary>
public enum IbvWcStatus
{
    Success,
    LocalLengthError,
    LocalQpOperationError,
    LocalEecOperationError,
    LocalProtectionError,
    WorkRequestFlushError,
    MemoryWindowBindError,
    BadResponseError,
    LocalAccessError,
    RemoteInvalidRequestError,
    RemoteAccessError,
    RemoteOperationError,
    RetryExceededError,
    RnrRetryExceededError,
    LocalRddViolationError,
    RemoteInvalidRdRequestError,
    RemoteAbortError,
    InvalidEecnError,
    InvalidEecStateError,
    FatalError,
    ResponseTimeoutError,
    GeneralError,
    TagMatchingError,
    TagMatchingRendezvousIncomplete,
}

/// <summary><c>enum ibv_wc_opcode</c>: what completed. Receive completions have bit 7 set.</summary>
public enum IbvWcOpcode
{
    Send = 0,
    RdmaWrite = 1,
    RdmaRead = 2,
    CompareSwap = 3,
    FetchAdd = 4,
    BindMemoryWindow = 5,
    LocalInvalidate = 6,
    Tso = 7,
    Receive = 1 << 7,
    ReceiveRdmaWithImmediate = Receive + 1,
}

/// <summary><c>enum ibv_wr_opcode</c>: the operation a send-queue work request performs.</summary>
public enum IbvWrOpcode
{
    RdmaWrite = 0,
    RdmaWriteWithImmediate = 1,
    Send = 2,
    SendWithImmediate = 3,
    RdmaRead = 4,
    AtomicCompareAndSwap = 5,
    AtomicFetchAndAdd = 6,
    LocalInvalidate = 7,
    BindMemoryWindow = 8,
    SendWithInvalidate = 9,
}

/// <summary><c>enum ibv_send_flags</c>.</summary>
[Flags]
public enum IbvSendFlags : uint
{
    None = 0,
    Fence = 1 << 0,
    Signaled = 1 << 1,
    Solicited = 1 << 2,
    Inline = 1 << 3,
}

/// <summary><c>enum ibv_access_flags</c>: what the local HCA and remote peers may do with a memory region.</summary>
[Flags]
public enum IbvAccessFlags
{
    None = 0,
    LocalWrite = 1 << 0,
    RemoteWrite = 1 << 1,
    RemoteRead = 1 << 2,
    RemoteAtomic = 1 << 3,
    /// <summary>Memory windows may be bound over the region (they then carry the remote access, not the region).</summary>
    MemoryWindowBind = 1 << 4,
}

/// <summary><c>enum ibv_mw_type</c>.</summary>
public enum IbvMwType
{
    Type1 = 1,
    /// <summary>Bound by a work request on one queue pair, usable only through that queue pair, invalidated per use.</summary>
    Type2 = 2,
}

/// <summary><c>enum ibv_device_cap_flags</c>: only the memory-window bits are mapped.</summary>
[Flags]
public enum IbvDeviceCapabilities : uint
{
    None = 0,
    MemoryWindow = 1 << 17,
    MemoryWindowType2A = 1 << 23,
    MemoryWindowType2B = 1 << 24,
}

/// <summary><c>enum ibv_qp_type</c>.</summary>
public enum IbvQpType
{
    ReliableConnected = 2,
    UnreliableConnected = 3,
    UnreliableDatagram = 4,
}

/// <summary><c>enum ibv_wc_flags</c>.</summary>
[Flags]
public enum IbvWcFlags : uint
{
    None = 0,
    Grh = 1 << 0,
    WithImmediate = 1 << 1,
    IpChecksumOk = 1 << 2,
    WithInvalidate = 1 << 3,
}
