using IserBlockd.Iscsi.Negotiation;

namespace IserBlockd.Iscsi.ConnectionPort;

/// <summary>
/// What a connection learns when login completes: the negotiated parameters (TCP switches digests on and sizes
/// its buffers) and the command window the target opened (iSER posts receive buffers for it).
/// </summary>
public sealed record FullFeaturePhaseContext(NegotiatedParameters Parameters, int CommandWindow);
