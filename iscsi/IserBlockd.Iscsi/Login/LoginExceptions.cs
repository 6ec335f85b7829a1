namespace IserBlockd.Iscsi.Login;

/// <summary>
/// Login failed. Subclasses name the failure class; <see cref="StatusClass"/>/<see cref="StatusDetail"/> hold the
/// target's Login Response status when the target refused (0 when the failure was detected on our side).
/// </summary>
public class IscsiLoginException : IscsiException
{
    public IscsiLoginException(string message, byte statusClass = 0, byte statusDetail = 0, Exception? inner = null)
        : base(message, inner)
    {
        StatusClass = statusClass;
        StatusDetail = statusDetail;
    }

    public byte StatusClass { get; }
    public byte StatusDetail { get; }
    public ushort Status => (ushort)(StatusClass << 8 | StatusDetail);
}

/// <summary>The target does not know the requested target name (status 0x0203 Not found, 0x0204 Target removed).</summary>
public sealed class TargetNotFoundException(string message, byte statusClass = 2, byte statusDetail = 3)
    : IscsiLoginException(message, statusClass, statusDetail);

/// <summary>The target rejected our credentials (status 0x0201): wrong CHAP user or secret, or CHAP required.</summary>
public sealed class AuthenticationFailedException(string message, byte statusClass = 2, byte statusDetail = 1)
    : IscsiLoginException(message, statusClass, statusDetail);

/// <summary>Mutual CHAP: the target's answer to our challenge was wrong, or it would not authenticate itself.</summary>
public sealed class TargetAuthenticationFailedException(string message)
    : IscsiLoginException(message);

/// <summary>The initiator is authenticated but not allowed to use this target (status 0x0202, ACLs).</summary>
public sealed class AuthorizationFailedException(string message, byte statusClass = 2, byte statusDetail = 2)
    : IscsiLoginException(message, statusClass, statusDetail);

/// <summary>The target is busy or out of resources (0x0206 too many connections, 0x0301, 0x0302): retry later.</summary>
public sealed class TargetBusyException(string message, byte statusClass, byte statusDetail)
    : IscsiLoginException(message, statusClass, statusDetail);

/// <summary>
/// Negotiation failed: a missing or unacceptable parameter (0x0207, 0x0209, 0x020b), or the target answered a key
/// against its negotiation rule.
/// </summary>
public sealed class LoginParameterException(string message, byte statusClass = 0, byte statusDetail = 0)
    : IscsiLoginException(message, statusClass, statusDetail);

/// <summary>No common iSCSI version (0x0205, or a Version-active we do not speak).</summary>
public sealed class UnsupportedVersionException(string message, byte statusClass = 2, byte statusDetail = 5)
    : IscsiLoginException(message, statusClass, statusDetail);

/// <summary>Redirected more often than allowed, or a redirection without a usable TargetAddress.</summary>
public sealed class TargetRedirectException(string message, byte statusClass = 1, byte statusDetail = 1)
    : IscsiLoginException(message, statusClass, statusDetail);

/// <summary>
/// The target chose CHAP_A=7 and then refused our SHA-256 response (status 0x0200 or 0x0201), or answered our
/// challenge with a digest of another length. RFC 7143 and the IANA registry number SHA-256 as 7, but tgt numbers
/// SHA-1 as 7 and expects a 20-byte SHA-1 response: we never authenticate with a digest the target computes
/// differently. The session logs in again without SHA-256 in the offer (<see cref="Sessions.IscsiSession"/>).
/// </summary>
public sealed class ChapAlgorithmMismatchException(string message, byte statusClass, byte statusDetail, Exception? inner = null)
    : IscsiLoginException(message, statusClass, statusDetail, inner);
