namespace IserBlockd.Iscsi.Security;

/// <summary>
/// CHAP digest algorithms by their IANA PPP authentication algorithm number, as used in CHAP_A
/// (RFC 7143 §12.1.3 and the IANA registry: 5 MD5, 6 SHA-1, 7 SHA-256, 8 SHA3-256; Linux LIO and open-iscsi agree).
/// tgt numbers SHA-1 as 7, so offering 7 to tgtd fails; the default offer is MD5 only, as in open-iscsi.
/// </summary>
public enum ChapAlgorithm
{
    Md5 = 5,
    Sha1 = 6,
    Sha256 = 7,
    Sha3_256 = 8,
}
