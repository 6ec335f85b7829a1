namespace IserBlockd.BlockDev.Kernel.Netlink;

/// <summary>A generic netlink family as the controller describes it (CTRL_CMD_GETFAMILY).</summary>
public sealed record GenericNetlinkFamily(string Name, ushort Id, uint Version, IReadOnlyDictionary<string, uint> MulticastGroups);
