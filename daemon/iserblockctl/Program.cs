using IserBlockd.Daemon.Cli;

// iserblockctl: discovery and LUN inquiry on its own, and control of a running iserblockd over its control
// socket; the commands live in IserBlockd.Daemon/Cli.
return await CtlCommandLine.RunAsync(args);
