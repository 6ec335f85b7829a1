namespace IserBlockd.Daemon.Configuration;

/// <summary>CHAP for one node: the initiator authenticates as <see cref="User"/>; with
/// <see cref="TargetUser"/> set the target must authenticate back (mutual CHAP).</summary>
public sealed record ChapSettings(
    string User,
    string SecretFile,
    ChapSecret Secret,
    string? TargetUser,
    string? TargetSecretFile,
    ChapSecret? TargetSecret)
{
    public bool IsMutual => TargetUser != null;
}
