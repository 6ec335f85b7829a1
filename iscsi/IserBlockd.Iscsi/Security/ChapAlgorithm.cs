namespace IserBlockd.Iscsi.Security;

/// <summary>
/// CHAP digest algorithms by their IANA PPP authentication algorithm number, as used in CHAP_A
/// (RFC 7143 §12.1.3 and the IANA registry: 5 MD5, 6 SHA-1, 7 SHA-256, 8 SHA3-256; Linux LIO and open-iscsi agree).
/// tgt (up to 1.0.97 at least) numbers SHA-1 as 7 and picks the first of 5 and 7 in our list: when a target chooses 7
/// and then refuses our SHA-256 response, the session logs in again without 7 (<see cref="Login.ChapAlgorithmMismatchException"/>).
/// The core's default offer is MD5 only; the daemon offers SHA3-256, SHA-256, SHA-1, MD5 unless configured otherwise.
/// </summary>
public enum ChapAlgorithm
{
    Md5 = 5,
    Sha1 = 6,
    Sha256 = 7,
    Sha3_256 = 8,
}
