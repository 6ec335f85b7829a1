using System.CommandLine;

namespace IserBlockd.Daemon.Cli;

/// <summary>
/// The iserblockctl command line. One file per command or family of commands (<see cref="DiscoverCommand"/>, <see cref="NodeCommands"/>); those that send
/// one request to the daemon are made by <see cref="ControlCommandSupport.Create"/>;
/// more commands are added to <see cref="Build"/>. Parse errors print one line each and exit with 7 (ISCSI_ERR_INVAL).
/// </summary>
public static class CtlCommandLine
{
    public static RootCommand Build(CtlContext context)
    {
        var root = new RootCommand("iserblockctl: iSCSI discovery and LUN inquiry, and control of the iserblockd daemon")
        {
            DiscoverCommand.Create(context),
            InquiryCommand.Create(context),
            DaemonCommands.List(context),
            DaemonCommands.Status(context),
            NodeCommands.Login(context),
            NodeCommands.Logout(context),
            MappingCommands.Map(context),
            MappingCommands.Unmap(context),
            DaemonCommands.Reload(context),
            LunsCommand.Create(context),
            ShowCommand.Create(context),
            NodeCommands.Rescan(context),
            StatsCommand.Create(context),
        };
        return root;
    }

    public static async Task<int> RunAsync(string[] args, CtlContext? context = null)
    {
        context ??= new CtlContext();
        var parse = Build(context).Parse(args);
        if (parse.Errors.Count > 0 && parse.Action is not System.CommandLine.Help.HelpAction)
        {
            foreach (var error in parse.Errors) await context.Error.WriteLineAsync($"iserblockctl: {error.Message}").ConfigureAwait(false);
            await context.Error.WriteLineAsync("Try 'iserblockctl --help'.").ConfigureAwait(false);
            return ExitCodes.Invalid;
        }
        return await parse.InvokeAsync(new InvocationConfiguration { Output = context.Output, Error = context.Error }).ConfigureAwait(false);
    }
}
