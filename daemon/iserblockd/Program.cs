using System.CommandLine;
using IserBlockd.Cli;
using IserBlockd.Daemon.Hosting;

// iserblockd: the daemon (run) and the qemu-nbd-like foreground export (export).
var root = new RootCommand("iserblockd: userspace iSCSI/iSER initiator that exposes LUNs as NBD block devices")
{
    RunCommand.Create(),
    ExportCommand.Create(),
    CheckConfigCommand.Create(),
};
var parse = root.Parse(args);
if (parse.Errors.Count > 0 && parse.Action is not System.CommandLine.Help.HelpAction)
{
    foreach (var error in parse.Errors)
        Console.Error.WriteLine($"iserblockd: {error.Message}");
    Console.Error.WriteLine("Try 'iserblockd --help'.");
    return ExitCodes.Usage;
}
// Signals are the commands' own business (they flush and log out before exiting).
return await parse.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
