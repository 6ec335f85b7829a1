using IserBlockd.Iscsi.Security;

namespace IserBlockd.Daemon.Configuration;

/// <summary>CHAP for one node: the initiator authenticates as <see cref="User"/>; with
/// <see cref="TargetUser"/> set the target must authenticate back (mutual CHAP).</summary>
public sealed record ChapSettings(
    string User,
    string SecretFile,
    ChapSecret Secret,
    string? TargetUser,
    string? TargetSecretFile,
    ChapSecret? TargetSecret,
    IReadOnlyList<ChapAlgorithm>? Algorithms = null)
{
    public bool IsMutual => TargetUser != null;

    /// <summary>The CHAP_A offer, most preferred first (<c>chap.algorithms</c>, <c>--chap-algorithms</c>).</summary>
    public IReadOnlyList<ChapAlgorithm> Offer => Algorithms ?? ChapAlgorithmNames.Default;

    /// <summary>What the CHAP code of the iSCSI core takes.</summary>
    public ChapCredentials Initiator => new(User, Secret);

    public ChapCredentials? Target => TargetUser != null && TargetSecret != null ? new(TargetUser, TargetSecret) : null;
}
