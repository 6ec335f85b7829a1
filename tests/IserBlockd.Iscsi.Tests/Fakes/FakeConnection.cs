using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using IserBlockd.Iscsi.Negotiation;
using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.Scsi;
using IserBlockd.Iscsi.Security;

namespace IserBlockd.Iscsi.Tests.Fakes;

public sealed partial class FakeConnection(FakeTarget target, TargetSide side)
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

    /// <summary>Counts a PDU in the CmdSN window (tests that answer commands themselves call it too).</summary>
    public void Advance(ReadOnlySpan<byte> header)
    {
        if (!BasicHeaderSegment.IsImmediate(header)) _expCmdSN = BinaryPrimitives.ReadUInt32BigEndian(header[24..]) + 1;
        else if (_expCmdSN == 0) _expCmdSN = BinaryPrimitives.ReadUInt32BigEndian(header[24..]);
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
                BinaryPrimitives.WriteUInt64BigEndian(data, (ulong)((target.CapacityBlocks ?? target.Disk.Length / target.BlockSize) - 1));
                BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(8), (uint)target.BlockSize);
                break;
            case 0x5a when target.WriteCacheEnabled is { } wce: // MODE SENSE(10), DBD: header and the Caching page
                data = new byte[8 + 20];
                BinaryPrimitives.WriteUInt16BigEndian(data, (ushort)(data.Length - 2));
                data[3] = 0x10;          // DPOFUA
                data[8] = 0x08;          // Caching mode page
                data[9] = 0x12;
                data[10] = (byte)(wce ? 0x04 : 0);
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
