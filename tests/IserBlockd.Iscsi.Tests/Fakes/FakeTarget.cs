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
    public int BlockSize { get; init; } = 512;
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

public sealed class FakeConnection(FakeTarget target, TargetSide side)
{
    private readonly Dictionary<uint, PendingWrite> _writes = new();
    public List<(uint Itt, byte[] Cdb, int Length)> Held { get; } = [];
    private uint _statSN = 100;
    private uint _expCmdSN;
    private int _initiatorMaxRecv = IscsiKeys.DefaultMaxRecvDataSegmentLength;
    private bool _unitAttentionPending;
    private uint _nextTtt = 1;
    private byte _chapId;
    private byte[] _chapChallenge = [];
    private int _chapAlgorithm;
    private bool _offered;

    public TargetSide Side => side;
    public bool FullFeature { get; private set; }
    public Dictionary<string, string> InitiatorKeys { get; } = new();
    public uint MaxCmdSN => _expCmdSN + (uint)target.Window - 1;
    public uint ExpCmdSN => _expCmdSN;
    public uint NextStatSN() => _statSN++;
    public uint PeekStatSN => _statSN;

    private sealed record PendingWrite(ulong Lun, byte[] Cdb, byte[] Buffer, int Received, uint NextR2TOffset);

    public async Task RunAsync()
    {
        try
        {
            await foreach (var pdu in side.Incoming.ReadAllAsync())
            {
                lock (target.Received) target.Received.Add(pdu);
                if (target.Intercept?.Invoke(this, pdu) == true) continue;
                await HandleAsync(pdu);
            }
        }
        catch (Exception e) when (e is InvalidOperationException or System.Threading.Channels.ChannelClosedException)
        {
        }
    }

    public Task SendAsync(RawPdu pdu) => side.SendAsync(pdu).AsTask();

    private async Task HandleAsync(RawPdu pdu)
    {
        switch (pdu.Opcode)
        {
            case IscsiOpcode.LoginRequest: await LoginAsync(pdu); break;
            case IscsiOpcode.ScsiCommand: await CommandAsync(pdu); break;
            case IscsiOpcode.DataOut: await DataOutAsync(pdu); break;
            case IscsiOpcode.NopOut: await NopOutAsync(pdu); break;
            case IscsiOpcode.TextRequest: await TextAsync(pdu); break;
            case IscsiOpcode.TaskManagementRequest: await TaskManagementAsync(pdu); break;
            case IscsiOpcode.LogoutRequest: await LogoutAsync(pdu); break;
        }
    }

    private void Advance(ReadOnlySpan<byte> header)
    {
        if (!BasicHeaderSegment.IsImmediate(header)) _expCmdSN = BinaryPrimitives.ReadUInt32BigEndian(header[24..]) + 1;
        else if (_expCmdSN == 0) _expCmdSN = BinaryPrimitives.ReadUInt32BigEndian(header[24..]);
    }

    // ---------------------------------------------------------------- login

    private async Task LoginAsync(RawPdu pdu)
    {
        var request = LoginRequestPdu.Read(pdu.Header);
        _expCmdSN = request.CmdSN;
        var keys = TextKeyValues.Parse(pdu.Data);
        foreach (var (k, v) in keys) InitiatorKeys[k] = v;
        var answer = new List<KeyValuePair<string, string>>();
        var response = new LoginResponsePdu
        {
            CurrentStage = request.CurrentStage,
            Isid = request.Isid,
            InitiatorTaskTag = request.InitiatorTaskTag,
            StatSN = _statSN,
            ExpCmdSN = _expCmdSN,
            MaxCmdSN = MaxCmdSN,
        };

        if (target.Redirect is { } redirect)
        {
            response.StatusClass = 1;
            response.StatusDetail = redirect.Permanent ? (byte)2 : (byte)1;
            await RespondAsync(response, [new("TargetAddress", redirect.Address)]);
            side.Close();
            return;
        }
        if (target.LoginFailure is { } failure)
        {
            response.StatusClass = failure.Class;
            response.StatusDetail = failure.Detail;
            await RespondAsync(response, []);
            side.Close();
            return;
        }
        if (keys.Any(k => k.Key == "TargetName" && k.Value != target.Name))
        {
            response.StatusClass = 2;
            response.StatusDetail = 3;
            await RespondAsync(response, []);
            side.Close();
            return;
        }

        if (request.CurrentStage == LoginStage.SecurityNegotiation)
        {
            var (proceed, transit) = await SecurityAsync(request, keys, response, answer);
            if (!proceed) return;
            if (transit)
            {
                response.Transit = request.Transit;
                response.NextStage = request.NextStage;
            }
        }
        else if (target.TargetOffers.Count > 0 && !_offered)
        {
            // Offer our own keys and stay in the stage: the initiator owes us answers first.
            _offered = true;
            Operational(keys, answer);
            answer.AddRange(target.TargetOffers);
        }
        else
        {
            if (!_offered) Operational(keys, answer);
            response.Transit = request.Transit;
            response.NextStage = request.NextStage;
        }

        if (response.Transit && response.NextStage == LoginStage.FullFeaturePhase)
        {
            response.Tsih = 0x1234;
            Interlocked.Increment(ref target.Logins);
            FullFeature = true;
            _unitAttentionPending = target.UnitAttentionFirst;
            if (InitiatorKeys.TryGetValue("MaxRecvDataSegmentLength", out var mrdsl)) _initiatorMaxRecv = int.Parse(mrdsl);
        }
        response.StatSN = _statSN++;
        await RespondAsync(response, answer);
    }

    private async Task<(bool Proceed, bool Transit)> SecurityAsync(LoginRequestPdu request, List<KeyValuePair<string, string>> keys, LoginResponsePdu response, List<KeyValuePair<string, string>> answer)
    {
        string? Get(string k) => keys.LastOrDefault(p => p.Key == k).Value;
        if (Get("AuthMethod") is { } methods)
        {
            var offered = methods.Split(',');
            var choice = target.Chap != null ? (offered.Contains("CHAP") ? "CHAP" : "Reject") : (offered.Contains("None") ? "None" : "Reject");
            answer.Add(new("AuthMethod", choice));
            answer.Add(new("TargetPortalGroupTag", "1"));
            if (choice == "Reject")
            {
                response.StatusClass = 2;
                response.StatusDetail = 1;
                await RespondAsync(response, answer);
                side.Close();
                return (false, false);
            }
            return (true, target.Chap == null);
        }
        if (Get("CHAP_A") is { } algorithms)
        {
            var chosen = algorithms.Split(',').Select(int.Parse).FirstOrDefault(a => target.ChapAlgorithms.Contains(a));
            if (chosen == 0) { answer.Add(new("CHAP_A", "Reject")); return (true, false); }
            _chapAlgorithm = chosen;
            _chapId = (byte)RandomNumberGenerator.GetInt32(256);
            _chapChallenge = RandomNumberGenerator.GetBytes(24);
            answer.Add(new("CHAP_A", chosen.ToString()));
            answer.Add(new("CHAP_I", _chapId.ToString()));
            answer.Add(new("CHAP_C", "0x" + Convert.ToHexStringLower(_chapChallenge)));
            return (true, false);
        }
        if (Get("CHAP_R") is { } chapResponse)
        {
            var expected = Chap.ComputeResponse((ChapAlgorithm)_chapAlgorithm, _chapId, ChapSecret.FromString(target.Chap!.Value.Secret), _chapChallenge);
            if (Get("CHAP_N") != target.Chap.Value.User || !Chap.DecodeBinary(chapResponse, "CHAP_R").AsSpan().SequenceEqual(expected))
            {
                response.StatusClass = 2;
                response.StatusDetail = 1;
                await RespondAsync(response, []);
                side.Close();
                return (false, false);
            }
            if (Get("CHAP_I") is { } id && Get("CHAP_C") is { } challenge && target.MutualChap is { } mutual)
            {
                var ours = Chap.ComputeResponse((ChapAlgorithm)_chapAlgorithm, byte.Parse(id), ChapSecret.FromString(mutual.Secret), Chap.DecodeBinary(challenge, "CHAP_C"));
                answer.Add(new("CHAP_N", mutual.User));
                answer.Add(new("CHAP_R", "0x" + Convert.ToHexStringLower(ours)));
            }
            return (true, true);
        }
        return (true, false);
    }

    private void Operational(List<KeyValuePair<string, string>> keys, List<KeyValuePair<string, string>> answer)
    {
        foreach (var (key, value) in keys)
        {
            if (target.Answers.TryGetValue(key, out var forced)) { answer.Add(new(key, forced)); continue; }
            string? reply = key switch
            {
                "HeaderDigest" or "DataDigest" => value.Split(',')[0],
                "MaxBurstLength" => Math.Min(int.Parse(value), target.MaxBurstLength).ToString(),
                "FirstBurstLength" => Math.Min(int.Parse(value), target.FirstBurstLength).ToString(),
                "InitialR2T" => value == "Yes" || target.InitialR2T ? "Yes" : "No",
                "ImmediateData" => value == "Yes" && target.ImmediateData ? "Yes" : "No",
                "MaxOutstandingR2T" or "MaxConnections" or "ErrorRecoveryLevel" or "DefaultTime2Retain" or "DefaultTime2Wait" => value,
                "DataPDUInOrder" or "DataSequenceInOrder" => "Yes",
                "MaxRecvDataSegmentLength" => null,
                _ => "NotUnderstood",
            };
            if (reply != null) answer.Add(new(key, reply));
        }
        if (target.MaxRecvDataSegmentLength is int declared && !target.Answers.ContainsKey("MaxRecvDataSegmentLength"))
            answer.Add(new("MaxRecvDataSegmentLength", declared.ToString()));
        foreach (var (k, v) in target.Answers)
            if (!keys.Any(p => p.Key == k) && !answer.Any(p => p.Key == k)) answer.Add(new(k, v));
    }

    private Task RespondAsync(LoginResponsePdu response, List<KeyValuePair<string, string>> keys)
    {
        var data = TextKeyValues.Format(keys);
        response.DataSegmentLength = data.Length;
        return SendAsync(RawPdu.Of(h => response.Write(h), data));
    }

    // ---------------------------------------------------------------- full feature phase

    private async Task CommandAsync(RawPdu pdu)
    {
        var command = ScsiCommandPdu.ReadHeader(pdu.Header);
        Advance(pdu.Header);
        var cdb = command.Cdb.ToArray();
        if (target.HoldCommands)
        {
            lock (Held) Held.Add((command.InitiatorTaskTag, cdb, (int)command.ExpectedDataTransferLength));
            return;
        }
        if (_unitAttentionPending)
        {
            _unitAttentionPending = false;
            await SendCheckConditionAsync(command.InitiatorTaskTag, SenseKey.UnitAttention, 0x29, 0x00);
            return;
        }
        var lun = LunAddress.Decode(command.Lun);
        if (lun != 1 && cdb[0] is not (ScsiOpcode.ReportLuns or ScsiOpcode.Inquiry))
        {
            await SendCheckConditionAsync(command.InitiatorTaskTag, SenseKey.IllegalRequest, 0x25, 0x00);
            return;
        }
        if (command.Write)
        {
            var buffer = new byte[command.ExpectedDataTransferLength];
            pdu.Data.CopyTo(buffer, 0);
            var write = new PendingWrite(lun, cdb, buffer, pdu.Data.Length, 0);
            _writes[command.InitiatorTaskTag] = write;
            if (command.Final) await SolicitOrCompleteAsync(command.InitiatorTaskTag);
            return;
        }
        await ExecuteAsync(command.InitiatorTaskTag, cdb, (int)command.ExpectedDataTransferLength, null);
    }

    private async Task DataOutAsync(RawPdu pdu)
    {
        var d = DataOutPdu.Read(pdu.Header);
        if (!_writes.TryGetValue(d.InitiatorTaskTag, out var write)) return;
        pdu.Data.CopyTo(write.Buffer, (int)d.BufferOffset);
        write = write with { Received = write.Received + pdu.Data.Length };
        _writes[d.InitiatorTaskTag] = write;
        if (d.Final) await SolicitOrCompleteAsync(d.InitiatorTaskTag);
    }

    private async Task SolicitOrCompleteAsync(uint itt)
    {
        var write = _writes[itt];
        if (write.Received >= write.Buffer.Length)
        {
            _writes.Remove(itt);
            await ExecuteAsync(itt, write.Cdb, write.Buffer.Length, write.Buffer);
            return;
        }
        var offset = (uint)Math.Max(write.Received, (int)write.NextR2TOffset);
        var length = (uint)Math.Min(target.MaxBurstLength, write.Buffer.Length - (int)offset);
        _writes[itt] = write with { NextR2TOffset = offset + length };
        var r2tsn = _r2tsn.GetValueOrDefault(itt);
        _r2tsn[itt] = r2tsn + 1;
        await SendAsync(RawPdu.Of(h => new ReadyToTransferPdu
        {
            Lun = LunAddress.Encode(write.Lun),
            InitiatorTaskTag = itt,
            TargetTransferTag = _nextTtt++,
            StatSN = _statSN,
            ExpCmdSN = _expCmdSN,
            MaxCmdSN = MaxCmdSN,
            R2TSN = r2tsn,
            BufferOffset = offset,
            DesiredDataTransferLength = length,
        }.Write(h)));
    }

    private readonly Dictionary<uint, uint> _r2tsn = new();

    /// <summary>Executes a CDB; read data goes out in Data-In PDUs of the initiator's MaxRecvDataSegmentLength, status collapsed into the last.</summary>
    public async Task ExecuteAsync(uint itt, byte[] cdb, int transferLength, byte[]? written)
    {
        byte[]? data = null;
        switch (cdb[0])
        {
            case ScsiOpcode.TestUnitReady:
            case ScsiOpcode.SynchronizeCache10:
            case ScsiOpcode.SynchronizeCache16:
                break;
            case ScsiOpcode.Inquiry:
                data = (cdb[1] & 1) == 0 ? StandardInquiry() : Vpd(cdb[2]);
                if (data == null) { await SendCheckConditionAsync(itt, SenseKey.IllegalRequest, 0x24, 0x00); return; }
                break;
            case ScsiOpcode.ServiceActionIn16:
                data = new byte[32];
                BinaryPrimitives.WriteUInt64BigEndian(data, (ulong)(target.Disk.Length / target.BlockSize - 1));
                BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(8), (uint)target.BlockSize);
                break;
            case ScsiOpcode.ReportLuns:
                data = new byte[16];
                BinaryPrimitives.WriteUInt32BigEndian(data, 8);
                BinaryPrimitives.WriteUInt64BigEndian(data.AsSpan(8), LunAddress.Encode(1));
                break;
            case ScsiOpcode.Read10 or ScsiOpcode.Read16 or ScsiOpcode.Write10 or ScsiOpcode.Write16:
            {
                var sixteen = cdb[0] is ScsiOpcode.Read16 or ScsiOpcode.Write16;
                var lba = sixteen ? BinaryPrimitives.ReadUInt64BigEndian(cdb.AsSpan(2)) : BinaryPrimitives.ReadUInt32BigEndian(cdb.AsSpan(2));
                var blocks = sixteen ? BinaryPrimitives.ReadUInt32BigEndian(cdb.AsSpan(10)) : BinaryPrimitives.ReadUInt16BigEndian(cdb.AsSpan(7));
                var offset = (long)lba * target.BlockSize;
                var length = (int)blocks * target.BlockSize;
                if (offset + length > target.Disk.Length) { await SendCheckConditionAsync(itt, SenseKey.IllegalRequest, 0x21, 0x00); return; }
                if (written != null) lock (target.Disk) written.AsSpan(0, length).CopyTo(target.Disk.AsSpan((int)offset));
                else lock (target.Disk) data = target.Disk.AsSpan((int)offset, length).ToArray();
                break;
            }
            default:
                await SendCheckConditionAsync(itt, SenseKey.IllegalRequest, 0x20, 0x00);
                return;
        }
        if (data == null || transferLength == 0)
        {
            await SendResponseAsync(itt, ScsiStatus.Good, null, 0, false);
            return;
        }
        var send = Math.Min(data.Length, transferLength);
        var residual = (uint)(transferLength - send);
        uint dataSN = 0;
        for (var at = 0; at < send || (send == 0 && at == 0); )
        {
            var chunk = Math.Min(_initiatorMaxRecv, send - at);
            var last = at + chunk >= send;
            var payload = data.AsSpan(at, chunk).ToArray();
            var pdu = new DataInPdu
            {
                Final = last,
                HasStatus = last,
                Status = 0,
                Underflow = last && residual > 0,
                ResidualCount = last ? residual : 0,
                DataSegmentLength = chunk,
                InitiatorTaskTag = itt,
                TargetTransferTag = BasicHeaderSegment.ReservedTag,
                StatSN = last ? _statSN++ : 0,
                ExpCmdSN = _expCmdSN,
                MaxCmdSN = MaxCmdSN,
                DataSN = dataSN++,
                BufferOffset = (uint)at,
            };
            await SendAsync(RawPdu.Of(h => pdu.Write(h), payload));
            at += chunk;
            if (send == 0) break;
        }
    }

    private byte[] StandardInquiry()
    {
        var d = new byte[96];
        d[0] = 0x00; d[2] = 0x05; d[3] = 0x12; d[4] = 91; d[7] = 0x02;
        "FAKE    "u8.CopyTo(d.AsSpan(8));
        "IN-MEMORY-DISK  "u8.CopyTo(d.AsSpan(16));
        "0001"u8.CopyTo(d.AsSpan(32));
        return d;
    }

    private static byte[]? Vpd(byte page) => page switch
    {
        VpdPage.SupportedPages => [0, 0, 0, 2, 0x00, 0x80],
        VpdPage.UnitSerialNumber => [0, 0x80, 0, 4, (byte)'F', (byte)'A', (byte)'K', (byte)'E'],
        _ => null,
    };

    public Task SendResponseAsync(uint itt, ScsiStatus status, byte[]? sense, uint residual, bool underflow)
    {
        byte[] data = [];
        if (sense != null)
        {
            data = new byte[2 + sense.Length];
            BinaryPrimitives.WriteUInt16BigEndian(data, (ushort)sense.Length);
            sense.CopyTo(data, 2);
        }
        var response = new ScsiResponsePdu
        {
            Status = (byte)status,
            DataSegmentLength = data.Length,
            InitiatorTaskTag = itt,
            StatSN = _statSN++,
            ExpCmdSN = _expCmdSN,
            MaxCmdSN = MaxCmdSN,
            ResidualCount = residual,
            Underflow = underflow,
        };
        return SendAsync(RawPdu.Of(h => response.Write(h), data));
    }

    public Task SendCheckConditionAsync(uint itt, SenseKey key, byte asc, byte ascq)
    {
        var sense = new byte[18];
        sense[0] = 0x70; sense[2] = (byte)key; sense[7] = 10; sense[12] = asc; sense[13] = ascq;
        return SendResponseAsync(itt, ScsiStatus.CheckCondition, sense, 0, false);
    }

    /// <summary>Answers every held command with GOOD (reads get zeros).</summary>
    public async Task ReleaseHeldAsync()
    {
        List<(uint Itt, byte[] Cdb, int Length)> held;
        lock (Held) { held = [.. Held]; Held.Clear(); }
        // Held writes are completed without their data (tests hold reads, or do not look at written bytes).
        foreach (var (itt, cdb, length) in held)
            if (cdb[0] is ScsiOpcode.Write10 or ScsiOpcode.Write16) await SendResponseAsync(itt, ScsiStatus.Good, null, 0, false);
            else await ExecuteAsync(itt, cdb, length, null);
    }

    private Task NopOutAsync(RawPdu pdu)
    {
        var nop = NopOutPdu.Read(pdu.Header);
        Advance(pdu.Header);
        if (nop.InitiatorTaskTag == BasicHeaderSegment.ReservedTag) return Task.CompletedTask; // answer to our ping
        return SendAsync(RawPdu.Of(h => new NopInPdu
        {
            DataSegmentLength = pdu.Data.Length,
            InitiatorTaskTag = nop.InitiatorTaskTag,
            TargetTransferTag = BasicHeaderSegment.ReservedTag,
            StatSN = _statSN++,
            ExpCmdSN = _expCmdSN,
            MaxCmdSN = MaxCmdSN,
        }.Write(h), pdu.Data));
    }

    private Task TextAsync(RawPdu pdu)
    {
        var request = TextRequestPdu.Read(pdu.Header);
        Advance(pdu.Header);
        var keys = TextKeyValues.Parse(pdu.Data);
        var answer = new List<KeyValuePair<string, string>>();
        if (keys.Any(k => k.Key == "SendTargets"))
        {
            answer.Add(new("TargetName", target.Name));
            answer.Add(new("TargetAddress", "192.0.2.10:3260,1"));
            answer.Add(new("TargetAddress", "[2001:db8::10]:3261,2"));
            answer.Add(new("TargetName", target.Name + "-second"));
        }
        var data = TextKeyValues.Format(answer);
        return SendAsync(RawPdu.Of(h => new TextResponsePdu
        {
            Final = true,
            DataSegmentLength = data.Length,
            InitiatorTaskTag = request.InitiatorTaskTag,
            TargetTransferTag = BasicHeaderSegment.ReservedTag,
            StatSN = _statSN++,
            ExpCmdSN = _expCmdSN,
            MaxCmdSN = MaxCmdSN,
        }.Write(h), data));
    }

    private Task TaskManagementAsync(RawPdu pdu)
    {
        var tmf = TaskManagementRequestPdu.Read(pdu.Header);
        Advance(pdu.Header);
        var response = TaskManagementResponse.FunctionComplete;
        if (tmf.Function == TaskManagementFunction.AbortTask)
        {
            lock (Held)
            {
                var index = Held.FindIndex(h => h.Itt == tmf.ReferencedTaskTag);
                if (index >= 0) Held.RemoveAt(index);
                else response = TaskManagementResponse.TaskDoesNotExist;
            }
        }
        return SendAsync(RawPdu.Of(h => new TaskManagementResponsePdu
        {
            Response = response,
            InitiatorTaskTag = tmf.InitiatorTaskTag,
            StatSN = _statSN++,
            ExpCmdSN = _expCmdSN,
            MaxCmdSN = MaxCmdSN,
        }.Write(h)));
    }

    private async Task LogoutAsync(RawPdu pdu)
    {
        var logout = LogoutRequestPdu.Read(pdu.Header);
        Advance(pdu.Header);
        await SendAsync(RawPdu.Of(h => new LogoutResponsePdu
        {
            InitiatorTaskTag = logout.InitiatorTaskTag,
            StatSN = _statSN++,
            ExpCmdSN = _expCmdSN,
            MaxCmdSN = MaxCmdSN,
        }.Write(h)));
        side.Close();
    }
}
