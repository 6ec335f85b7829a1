namespace IserBlockd.Iscsi.Pdu;

/// <summary>Login stages carried in CSG/NSG (RFC 7143 §11.12.3).</summary>
public enum LoginStage : byte
{
    SecurityNegotiation = 0,
    OperationalNegotiation = 1,
    FullFeaturePhase = 3,
}
