using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using IserBlockd.Iscsi.Negotiation;
using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.Scsi;
using IserBlockd.Iscsi.Security;

namespace IserBlockd.Iscsi.Tests.Fakes;

/// <summary>
/// A small iSCSI target on the in-memory transport, written from RFC 7143 independently of the core, to check
/// the core's behaviour where tgtd cannot be made to misbehave: login statuses, redirection, CHAP algorithms,
/// command windows, rejects, asynchronous messages, and any PDU a test wants to inject. One LUN (1) backed by memory.
/// </summary>
public sealed class FakeTarget
{
    public string Name { get; init; } = "iqn.2026-11.io.iserblockd.test:fake";
    public int BlockSize { get; set; } = 512;

    /// <summary>Blocks READ CAPACITY reports; null: the size of <see cref="Disk"/>.</summary>
    public long? CapacityBlocks { get; set; }
    public byte[] Disk { get; init; } = new byte[1 << 20];

    /// <summary>Refuse logins with this status (class, detail).</summary>
    public (byte Class, byte Detail)? LoginFailure { get; set; }

    /// <summary>Redirect logins (status 0x0101, or 0x0102 when permanent) to this TargetAddress.</summary>
    public (string Address, bool Permanent)? Redirect { get; set; }

    /// <summary>CHAP: the initiator must log in as (user, secret); algorithms accepted in order of the initiator's offer.</summary>
    public (string User, string Secret)? Chap { get; set; }
    public (string User, string Secret)? MutualChap { get; set; }
    public IReadOnlyList<int> ChapAlgorithms { get; set; } = [5];

    /// <summary>Values the target answers (or declares) in operational negotiation, overriding its rule-following answer.</summary>
    public Dictionary<string, string> Answers { get; } = new();

    /// <summary>Keys the target offers on its own in its first operational response, which then does not transit.</summary>
    public List<KeyValuePair<string, string>> TargetOffers { get; } = [];

    /// <summary>Target preferences for rule-following answers.</summary>
    public int MaxBurstLength { get; set; } = 262144;
    public int FirstBurstLength { get; set; } = 65536;
    public bool InitialR2T { get; set; } = true;
    public bool ImmediateData { get; set; } = true;
    /// <summary>Declared MaxRecvDataSegmentLength; null to omit it, as tgtd does.</summary>
    public int? MaxRecvDataSegmentLength { get; set; }

    /// <summary>MaxCmdSN - ExpCmdSN + 1 granted to the initiator.</summary>
    public int Window { get; set; } = 64;

    public bool UnitAttentionFirst { get; set; } = true;

    /// <summary>The WCE bit MODE SENSE(10) reports in the Caching mode page; null: MODE SENSE is refused (ILLEGAL REQUEST).</summary>
    public bool? WriteCacheEnabled { get; set; }

    /// <summary>Do not answer SCSI commands (they stay pending) while set.</summary>
    public bool HoldCommands { get; set; }

    /// <summary>Called for every PDU from the initiator; return true when the test handled it.</summary>
    public Func<FakeConnection, RawPdu, bool>? Intercept { get; set; }

    public List<RawPdu> Received { get; } = [];
    public ConcurrentQueue<FakeConnection> Connections { get; } = new();
    public int Logins;

    internal void Accept(TargetSide side, IscsiPortal portal)
    {
        var connection = new FakeConnection(this, side);
        Connections.Enqueue(connection);
        _ = Task.Run(connection.RunAsync);
    }

    public FakeConnection LastConnection => Connections.Last();
}
