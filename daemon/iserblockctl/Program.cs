using IserBlockd.Daemon.Cli;

// iserblockctl: discovery and LUN inquiry without a daemon; the commands live in IserBlockd.Daemon/Cli.
return await CtlCommandLine.RunAsync(args);
