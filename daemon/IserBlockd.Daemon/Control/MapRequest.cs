using IserBlockd.Daemon.Configuration;

namespace IserBlockd.Daemon.Control;

/// <summary>A validated map request: the same mapping a LUN entry of the configuration file describes.</summary>
public sealed record MapRequest(string Node, LunMapping Mapping);
