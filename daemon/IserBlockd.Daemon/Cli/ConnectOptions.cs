using System.CommandLine;
using System.Globalization;
using IserBlockd.Daemon.Configuration;
using IserBlockd.Daemon.Identity;
using IserBlockd.Iscsi;
using IserBlockd.Iscsi.Security;
using IserBlockd.Iscsi.Sessions;
using IserBlockd.Transport.Selection;

namespace IserBlockd.Daemon.Cli;

/// <summary>
/// The options every command that connects to a target shares (iserblockctl's and <c>iserblockd export</c>), in
/// iscsiadm's spirit and with the configuration file's meaning: <c>--portal --target --lun --initiator-name
/// --transport tcp|iser|auto --chap-user --chap-secret-file --target-user --target-secret-file --header-digest
/// --data-digest --login-timeout</c>. Secrets come only from files of mode 0600 or stricter (the configuration's rules).
/// Commands add the options they use and call <see cref="Resolve"/> in their action.
/// </summary>
public sealed class ConnectOptions
{
    public Option<string[]> Portal { get; } = new("--portal", "-p")
    {
        Description = "Target portal ADDRESS[:PORT] (IPv6 as [ADDRESS]:PORT; port default 3260); repeat for fallbacks",
        HelpName = "PORTAL",
    };

    public Option<string> Target { get; } = new("--target", "-T") { Description = "Target IQN", HelpName = "IQN" };

    public Option<string?> Lun { get; } = new("--lun", "-l") { Description = "LUN number (default: the first disk LUN the target reports)", HelpName = "N" };

    public Option<string?> InitiatorName { get; } = new("--initiator-name", "-I")
    {
        Description = $"Initiator IQN (default: {InitiatorIdentity.OpenIscsiFile}, else one generated once and kept in {InitiatorIdentity.StateFile})",
        HelpName = "IQN",
    };

    public Option<string> Transport { get; } = new("--transport")
    {
        Description = "tcp, iser or auto (iSER when an RDMA device reaches the portal and the target accepts it, else TCP)",
        HelpName = "KIND",
        DefaultValueFactory = _ => "auto",
    };

    public Option<string?> ChapUser { get; } = new("--chap-user") { Description = "CHAP user name we log in as", HelpName = "USER" };
    public Option<string?> ChapSecretFile { get; } = new("--chap-secret-file") { Description = "File holding our CHAP secret (mode 0600)", HelpName = "FILE" };
    public Option<string?> TargetUser { get; } = new("--target-user") { Description = "Mutual CHAP: the user name the target answers as", HelpName = "USER" };
    public Option<string?> TargetSecretFile { get; } = new("--target-secret-file") { Description = "Mutual CHAP: file holding the target's secret (mode 0600)", HelpName = "FILE" };

    public Option<string?> HeaderDigest { get; } = new("--header-digest")
    {
        Description = "None, CRC32C, or a preference list such as CRC32C,None (as the configuration's operational.headerDigest)",
        HelpName = "DIGESTS",
    };

    public Option<string?> DataDigest { get; } = new("--data-digest")
    {
        Description = "None, CRC32C, or a preference list such as CRC32C,None (as the configuration's operational.dataDigest)",
        HelpName = "DIGESTS",
    };

    public Option<int?> MaxRecvDataSegmentLength { get; } = new("--max-recv-data-segment-length")
    {
        Description = "Largest data segment we accept, 512 to 16777215 (as operational.maxRecvDataSegmentLength; default 262144)",
        HelpName = "BYTES",
    };

    public Option<int?> MaxBurstLength { get; } = new("--max-burst-length")
    {
        Description = "MaxBurstLength we propose, 512 to 16777215 (as operational.maxBurstLength)",
        HelpName = "BYTES",
    };

    public Option<int?> FirstBurstLength { get; } = new("--first-burst-length")
    {
        Description = "FirstBurstLength we propose, 512 to 16777215 and at most --max-burst-length (as operational.firstBurstLength)",
        HelpName = "BYTES",
    };

    public Option<string?> InitialR2T { get; } = new("--initial-r2t") { Description = "Yes or No: InitialR2T we propose (default No)", HelpName = "YES|NO" };

    public Option<string?> ImmediateData { get; } = new("--immediate-data") { Description = "Yes or No: ImmediateData we propose (default Yes)", HelpName = "YES|NO" };

    public Option<string?> ChapAlgorithms { get; } = new("--chap-algorithms")
    {
        Description = $"CHAP algorithms to offer, most preferred first; the target picks (default {ChapAlgorithmNames.Format(ChapAlgorithmNames.Default)})",
        HelpName = "LIST",
    };

    public Option<double> LoginTimeout { get; } = new("--login-timeout")
    {
        Description = "Seconds for connecting and logging in to one portal (default 15)",
        HelpName = "SECONDS",
        DefaultValueFactory = _ => 15,
    };

    private bool _hasLun;

    /// <summary>Adds the options for a command that logs in to one target (and, with <paramref name="lun"/>, a LUN).
    /// Without <paramref name="required"/> the command checks that portal and target are given where it needs them.</summary>
    public void AddTargetOptions(Command command, bool lun = true, bool required = true)
    {
        Portal.Required = required;
        Target.Required = required;
        command.Add(Portal);
        command.Add(Target);
        if (lun) command.Add(Lun);
        _hasLun = lun;
        AddIdentityOptions(command);
        command.Add(HeaderDigest);
        command.Add(DataDigest);
        command.Add(MaxRecvDataSegmentLength);
        command.Add(MaxBurstLength);
        command.Add(FirstBurstLength);
        command.Add(InitialR2T);
        command.Add(ImmediateData);
    }

    /// <summary>Adds initiator name, transport, CHAP and timeout options (discovery uses just these).</summary>
    public void AddIdentityOptions(Command command)
    {
        command.Add(InitiatorName);
        command.Add(Transport);
        command.Add(ChapUser);
        command.Add(ChapAlgorithms);
        command.Add(ChapSecretFile);
        command.Add(TargetUser);
        command.Add(TargetSecretFile);
        command.Add(LoginTimeout);
    }

    /// <summary>Validates and reads everything (secret files included); throws <see cref="CliFailure"/> with exit code 7 on bad input.</summary>
    public ConnectSettings Resolve(ParseResult result, Func<InitiatorIdentity>? identity = null, bool needTarget = true)
    {
        var portals = new List<IscsiPortal>();
        foreach (var text in result.GetValue(Portal) ?? [])
        {
            if (!IscsiPortal.TryParse(text, out var portal, out var why))
                throw new CliFailure(ExitCodes.Invalid, $"--portal '{text}': {why}");
            portals.Add(portal with { PortalGroupTag = null });
        }
        string? target = null;
        if (needTarget)
        {
            if (portals.Count == 0) throw new CliFailure(ExitCodes.Invalid, "--portal is required");
            target = result.GetValue(Target);
            if (target == null || !IscsiNameSyntax.IsValid(target))
                throw new CliFailure(ExitCodes.Invalid, $"--target '{target}': expected {IscsiNameSyntax.Expected}");
        }
        ulong? lun = null;
        if (_hasLun && result.GetValue(Lun) is { } lunText)
        {
            if (!ulong.TryParse(lunText, NumberStyles.None, CultureInfo.InvariantCulture, out var number) || number > 16383)
                throw new CliFailure(ExitCodes.Invalid, $"--lun '{lunText}': expected a number 0 to 16383");
            lun = number;
        }
        var digestErrors = new List<ConfigError>();
        var operational = OperationalOverrides.None with
        {
            HeaderDigest = result.GetValue(HeaderDigest) is { } h ? ConfigValidator.ValidateDigest(h, "--header-digest", digestErrors) : null,
            DataDigest = result.GetValue(DataDigest) is { } d ? ConfigValidator.ValidateDigest(d, "--data-digest", digestErrors) : null,
            MaxRecvDataSegmentLength = DataLength(result, MaxRecvDataSegmentLength),
            MaxBurstLength = DataLength(result, MaxBurstLength),
            FirstBurstLength = DataLength(result, FirstBurstLength),
            InitialR2T = YesNo(result, InitialR2T),
            ImmediateData = YesNo(result, ImmediateData),
        };
        if (digestErrors.Count > 0) throw new CliFailure(ExitCodes.Invalid, digestErrors[0].ToString());
        if (operational is { FirstBurstLength: { } first, MaxBurstLength: { } max } && first > max)
            throw new CliFailure(ExitCodes.Invalid, $"--first-burst-length must not exceed --max-burst-length ({operational.MaxBurstLength})");
        if (!IscsiTransportKindNames.TryParse(result.GetValue(Transport), out var kind))
            throw new CliFailure(ExitCodes.Invalid, $"--transport '{result.GetValue(Transport)}': expected tcp, iser or auto");
        var timeout = result.GetValue(LoginTimeout);
        if (timeout is <= 0 or > 3600)
            throw new CliFailure(ExitCodes.Invalid, "--login-timeout: expected 1 to 3600 seconds");

        var initiator = result.GetValue(InitiatorName);
        Identity.InitiatorName? origin = null;
        if (initiator != null)
        {
            if (!IscsiNameSyntax.IsValid(initiator))
                throw new CliFailure(ExitCodes.Invalid, $"--initiator-name '{initiator}': expected {IscsiNameSyntax.Expected}");
        }
        else
        {
            try
            {
                origin = (identity?.Invoke() ?? new InitiatorIdentity()).Resolve();
                initiator = origin.Name;
            }
            catch (InvalidOperationException e) { throw new CliFailure(ExitCodes.Invalid, e.Message); }
        }

        return new ConnectSettings(portals, target, lun, initiator, kind, ReadChap(result), operational, TimeSpan.FromSeconds(timeout))
        {
            InitiatorOrigin = origin,
        };
    }

    private static int? DataLength(ParseResult result, Option<int?> option)
    {
        if (result.GetValue(option) is not { } value) return null;
        if (value is < ConfigValidator.MinDataLength or > ConfigValidator.MaxDataLength)
            throw new CliFailure(ExitCodes.Invalid, $"{option.Name}: expected {ConfigValidator.MinDataLength} to {ConfigValidator.MaxDataLength}, got {value}");
        return value;
    }

    private static bool? YesNo(ParseResult result, Option<string?> option) => result.GetValue(option) switch
    {
        null => null,
        var v when v.Equals("yes", StringComparison.OrdinalIgnoreCase) => true,
        var v when v.Equals("no", StringComparison.OrdinalIgnoreCase) => false,
        var v => throw new CliFailure(ExitCodes.Invalid, $"{option.Name}: expected Yes or No, got \"{v}\""),
    };

    private ChapSettings? ReadChap(ParseResult result)
    {
        var user = result.GetValue(ChapUser);
        var secretFile = result.GetValue(ChapSecretFile);
        var targetUser = result.GetValue(TargetUser);
        var targetSecretFile = result.GetValue(TargetSecretFile);
        if ((user == null) != (secretFile == null))
            throw new CliFailure(ExitCodes.Invalid, "CHAP needs both --chap-user and --chap-secret-file");
        if ((targetUser == null) != (targetSecretFile == null))
            throw new CliFailure(ExitCodes.Invalid, "mutual CHAP needs both --target-user and --target-secret-file");
        if (targetUser != null && user == null)
            throw new CliFailure(ExitCodes.Invalid, "mutual CHAP (--target-user) needs --chap-user and --chap-secret-file too");
        IReadOnlyList<ChapAlgorithm>? algorithms = null;
        if (result.GetValue(ChapAlgorithms) is { } list)
        {
            if (user == null) throw new CliFailure(ExitCodes.Invalid, "--chap-algorithms needs --chap-user and --chap-secret-file");
            if (!ChapAlgorithmNames.TryParseList(list, out algorithms, out var why)) throw new CliFailure(ExitCodes.Invalid, $"--chap-algorithms: {why}");
        }
        if (user == null) return null;
        var secret = ReadSecret(secretFile!);
        var targetSecret = targetUser != null ? ReadSecret(targetSecretFile!) : null;
        if (targetSecret != null && secret.Equals(targetSecret))
            throw new CliFailure(ExitCodes.Invalid, "the target's CHAP secret must differ from ours (RFC 7143 section 9.2.1)");
        return new ChapSettings(user, Path.GetFullPath(secretFile!), secret, targetUser,
            targetSecretFile == null ? null : Path.GetFullPath(targetSecretFile), targetSecret, algorithms);
    }

    private static ChapSecret ReadSecret(string path)
        => SecretFile.TryRead(Path.GetFullPath(path), out var error) ?? throw new CliFailure(ExitCodes.Invalid, error);
}

/// <summary>The resolved connect options of one command.</summary>
/// <param name="Lun">The LUN asked for; null: the first disk LUN the target reports.</param>
public sealed record ConnectSettings(
    IReadOnlyList<IscsiPortal> Portals,
    string? TargetName,
    ulong? Lun,
    string InitiatorName,
    IscsiTransportKind Transport,
    ChapSettings? ChapSettings,
    OperationalOverrides Operational,
    TimeSpan LoginTimeout)
{
    /// <summary>Where the initiator name came from when --initiator-name was not given (for the log).</summary>
    public Identity.InitiatorName? InitiatorOrigin { get; init; }

    public ChapCredentials? Chap => ChapSettings?.Initiator;

    public ChapCredentials? TargetChap => ChapSettings?.Target;

    /// <summary>The same target as a configured node: one mapping from options to a session (<see cref="Sessions.SessionOptionsBuilder"/>).</summary>
    public NodeSettings ToNode(string name, IReadOnlyList<LunMapping> luns) =>
        new(name, [.. Portals.Select(p => new HostPort(p.Host, p.Port))], TargetName!, Transport, ChapSettings, Operational, luns);

    /// <summary>Session options for a one-off session (iserblockctl inquiry, luns): as the daemon's, without its retention.</summary>
    public IscsiSessionOptions ToSessionOptions() =>
        Sessions.SessionOptionsBuilder.Build(ToNode("cli", []), InitiatorName, DaemonSettings.Defaults with { LoginTimeout = LoginTimeout })
            with { RetainCommandsOnConnectionLoss = false };
}
