using System.CommandLine;
using IserBlockd.Daemon.Cli;
using IserBlockd.Cli;
using IserBlockd.Daemon.Hosting;

// iserblockd: the daemon (run) and the qemu-nbd-like foreground export (export).

// The runtime's socket engine drives every socket of the process (NBD, iSCSI/TCP, control). Its completions
// run on its epoll thread instead of hopping to the thread pool: an NBD request and the iSCSI response that
// answers it then cost no extra wakeups (measured with tests/bench/vs-qemu-nbd.sh). Nothing on those paths
// blocks; control-socket commands move themselves off that thread.
if (Environment.GetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS") == null)
    Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1");
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
    return ExitCodes.Invalid;
}
// Signals are the commands' own business (they flush and log out before exiting).
return await parse.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
