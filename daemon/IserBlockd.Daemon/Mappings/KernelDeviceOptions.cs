namespace IserBlockd.Daemon.Mappings;

/// <param name="IoTimeout">Kernel NBD request timeout; above the replacement timeout so the kernel never gives up first.</param>
/// <param name="BackendIdentifier">Names the LUN to the kernel (/sys/block/nbdN/backend); a restarted daemon finds its devices by it.</param>
/// <param name="Connections">Sockets the kernel spreads requests over (more than one needs a multi-connection device).</param>
public sealed record KernelDeviceOptions(TimeSpan IoTimeout, string BackendIdentifier, int Connections);
