namespace IserBlockd.BlockDev.Kernel.Netlink;

/// <summary>Messages of the generic netlink controller ("nlctrl", linux/genetlink.h): resolving a
/// family's id and multicast groups by name.</summary>
internal static class GenericNetlinkController
{
    public const byte CommandGetFamily = 3;       // CTRL_CMD_GETFAMILY
    public const byte CommandNewFamily = 1;       // CTRL_CMD_NEWFAMILY (the reply)
    public const byte Version = 1;

    public const ushort AttributeFamilyId = 1;    // u16
    public const ushort AttributeFamilyName = 2;  // string
    public const ushort AttributeVersion = 3;     // u32
    public const ushort AttributeMulticastGroups = 7;   // nested: [index] { name, id }
    public const ushort AttributeGroupName = 1;   // CTRL_ATTR_MCAST_GRP_NAME
    public const ushort AttributeGroupId = 2;     // CTRL_ATTR_MCAST_GRP_ID

    public static byte[] BuildGetFamily(string name, uint sequence) =>
        new NetlinkMessageBuilder(Netlink.TypeGenericController, Netlink.FlagRequest | Netlink.FlagAck, sequence,
                CommandGetFamily, Version)
            .PutString(AttributeFamilyName, name)
            .ToArray();

    public static GenericNetlinkFamily ParseFamily(NetlinkMessage reply)
    {
        if (reply.Type != Netlink.TypeGenericController || reply.GenericCommand != CommandNewFamily)
            throw new NetlinkException($"unexpected controller reply: type {reply.Type}, command {reply.GenericCommand}");
        var attributes = reply.GenericAttributes;
        var id = attributes.Find(AttributeFamilyId)?.AsU16()
            ?? throw new NetlinkException("controller reply without CTRL_ATTR_FAMILY_ID");
        var name = attributes.Find(AttributeFamilyName)?.AsString() ?? "";
        var version = attributes.Find(AttributeVersion)?.AsU32() ?? 0;
        var groups = new Dictionary<string, uint>();
        if (attributes.Find(AttributeMulticastGroups) is { } list)
        {
            foreach (var group in list.AsNested().ToList())
            {
                var fields = group.AsNested();
                if (fields.Find(AttributeGroupName) is { } groupName && fields.Find(AttributeGroupId) is { } groupId)
                    groups[groupName.AsString()] = groupId.AsU32();
            }
        }
        return new GenericNetlinkFamily(name, id, version, groups);
    }
}
