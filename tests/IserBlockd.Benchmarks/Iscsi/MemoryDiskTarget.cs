using System.Buffers.Binary;
using IserBlockd.Iscsi;
using IserBlockd.Iscsi.Negotiation;
using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.Scsi;

namespace IserBlockd.Benchmarks.Iscsi;

/// <summary>
/// The smallest iSCSI target the initiator's block I/O path can run against, for the benchmark: login without
/// authentication, one LUN on a memory disk, and the commands <see cref="ScsiLun"/> issues (TEST UNIT READY, INQUIRY,
/// READ CAPACITY(16), READ/WRITE(10) and (16), SYNCHRONIZE CACHE). Reads go out as Data-In with the status in the last
/// one (phase collapse, as tgtd and LIO do); writes are taken whole as immediate data and answered with a SCSI
/// Response. Anything else is answered CHECK CONDITION (ILLEGAL REQUEST), or, for PDUs a benchmark never causes,
/// refused with an exception that fails the connection.
/// </summary>
/// <remarks>
/// It runs inside the initiator's <c>SendAsync</c> (one sender at a time) and answers into <see cref="InboundPduQueue"/>:
/// a target with no latency, so the benchmark measures the initiator. In full feature phase it allocates nothing:
/// headers are parsed in place, replies are built on the stack and copied into the queue's slots.
/// </remarks>
internal sealed class MemoryDiskTarget
{
    public const string Name = "iqn.2026-11.io.iserblockd.bench:memory-disk";

    /// <summary>Commands the initiator may have outstanding (MaxCmdSN - ExpCmdSN + 1).</summary>
    public const int CommandWindow = 128;

    /// <summary>Declared MaxRecvDataSegmentLength: 4 KiB writes fit one immediate data segment.</summary>
    private const int MaxRecvDataSegmentLength = 262144;
    private const ushort SessionHandle = 0x4242;

    private readonly byte[] _disk;
    private readonly int _blockSize;
    private readonly InboundPduQueue _replies;
    private uint _statSN = 1;
    private uint _expCmdSN;
    private int _initiatorMaxRecvDataSegmentLength = IscsiKeys.DefaultMaxRecvDataSegmentLength;
    private bool _fullFeature;

    public MemoryDiskTarget(byte[] disk, int blockSize, InboundPduQueue replies)
    {
        if (disk.Length % blockSize != 0) throw new ArgumentException("the disk is not a whole number of blocks", nameof(disk));
        _disk = disk;
        _blockSize = blockSize;
        _replies = replies;
    }

    private uint MaxCmdSN => _expCmdSN + CommandWindow - 1;

    /// <summary>One PDU from the initiator (BHS with any AHS, data segment without padding).</summary>
    public void OnPdu(ReadOnlySpan<byte> header, ReadOnlySpan<byte> data)
    {
        var opcode = BasicHeaderSegment.GetOpcode(header);
        switch (opcode)
        {
            case IscsiOpcode.LoginRequest when !_fullFeature:
                OnLogin(header, data);
                break;
            case IscsiOpcode.ScsiCommand when _fullFeature:
                OnCommand(header, data);
                break;
            case IscsiOpcode.NopOut when _fullFeature:
                OnNopOut(header, data);
                break;
            case IscsiOpcode.LogoutRequest when _fullFeature:
                OnLogout(header);
                break;
            default:
                throw new IscsiProtocolException($"the benchmark target does not handle {opcode} ({(_fullFeature ? "full feature phase" : "login")})");
        }
    }

    // ---------------------------------------------------------------- login

    private void OnLogin(ReadOnlySpan<byte> header, ReadOnlySpan<byte> data)
    {
        var request = LoginRequestPdu.Read(header);
        _expCmdSN = request.CmdSN;
        var answers = new List<KeyValuePair<string, string>>();
        foreach (var (key, value) in TextKeyValues.Parse(data))
        {
            switch (key)
            {
                case IscsiKeys.AuthMethod or IscsiKeys.HeaderDigest or IscsiKeys.DataDigest:
                    // No authentication and no digests: there is no wire to protect.
                    answers.Add(new(key, value.Split(',').Contains("None") ? "None" : "Reject"));
                    break;
                case IscsiKeys.MaxRecvDataSegmentLength:
                    _initiatorMaxRecvDataSegmentLength = int.Parse(value);
                    break;
                case IscsiKeys.InitiatorName or IscsiKeys.InitiatorAlias or IscsiKeys.SessionType or IscsiKeys.TargetName:
                    break;
                default:
                    // The other keys the initiator offers are numbers (minimum/maximum rules) and booleans (AND/OR):
                    // answering with the offered value itself is valid under each rule (RFC 7143 §6.2).
                    if (request.CurrentStage == LoginStage.OperationalNegotiation) answers.Add(new(key, value));
                    break;
            }
        }
        if (request.CurrentStage == LoginStage.SecurityNegotiation) answers.Add(new(IscsiKeys.TargetPortalGroupTag, "1"));
        else answers.Add(new(IscsiKeys.MaxRecvDataSegmentLength, MaxRecvDataSegmentLength.ToString()));

        var entersFullFeature = request.Transit && request.NextStage == LoginStage.FullFeaturePhase;
        var text = TextKeyValues.Format(answers);
        Span<byte> bhs = stackalloc byte[BasicHeaderSegment.Length];
        new LoginResponsePdu
        {
            Transit = request.Transit,
            CurrentStage = request.CurrentStage,
            NextStage = request.Transit ? request.NextStage : request.CurrentStage,
            DataSegmentLength = text.Length,
            Isid = request.Isid,
            Tsih = entersFullFeature ? SessionHandle : (ushort)0,
            InitiatorTaskTag = request.InitiatorTaskTag,
            StatSN = _statSN++,
            ExpCmdSN = _expCmdSN,
            MaxCmdSN = MaxCmdSN,
        }.Write(bhs);
        _replies.Enqueue(bhs, text);
        _fullFeature = entersFullFeature;
    }

    // ---------------------------------------------------------------- SCSI commands

    private void OnCommand(ReadOnlySpan<byte> header, ReadOnlySpan<byte> data)
    {
        if (BasicHeaderSegment.GetTotalAhsLength(header) != 0) throw new IscsiProtocolException("the benchmark target takes no AHS (extended CDBs)");
        var itt = BasicHeaderSegment.GetInitiatorTaskTag(header);
        var expectedLength = BinaryPrimitives.ReadUInt32BigEndian(header[20..]);
        if (!BasicHeaderSegment.IsImmediate(header)) _expCmdSN = BinaryPrimitives.ReadUInt32BigEndian(header[24..]) + 1;
        var cdb = header.Slice(32, 16);
        switch (cdb[0])
        {
            case ScsiOpcode.TestUnitReady or ScsiOpcode.SynchronizeCache10 or ScsiOpcode.SynchronizeCache16:
                SendStatus(itt, ScsiStatus.Good);
                break;
            case ScsiOpcode.Inquiry:
                OnInquiry(itt, cdb, expectedLength);
                break;
            case ScsiOpcode.ServiceActionIn16 when (cdb[1] & 0x1f) == ScsiOpcode.ReadCapacity16ServiceAction:
            {
                Span<byte> capacity = stackalloc byte[32];
                capacity.Clear();
                BinaryPrimitives.WriteUInt64BigEndian(capacity, (ulong)(_disk.Length / _blockSize) - 1);
                BinaryPrimitives.WriteUInt32BigEndian(capacity[8..], (uint)_blockSize);
                SendData(itt, capacity, expectedLength);
                break;
            }
            case ScsiOpcode.Read10 or ScsiOpcode.Read16:
            {
                if (!TryGetRange(cdb, out var offset, out var length)) SendCheckCondition(itt, SenseKey.IllegalRequest, 0x21, 0x00);
                else if (length == 0) SendStatus(itt, ScsiStatus.Good);
                else SendData(itt, _disk.AsSpan(offset, length), expectedLength);
                break;
            }
            case ScsiOpcode.Write10 or ScsiOpcode.Write16:
            {
                if (!TryGetRange(cdb, out var offset, out var length))
                {
                    SendCheckCondition(itt, SenseKey.IllegalRequest, 0x21, 0x00);
                    break;
                }
                var final = (header[1] & 0x80) != 0;
                if (!final || data.Length != length || expectedLength != length)
                    throw new IscsiProtocolException($"the benchmark target takes writes whole as immediate data: {data.Length} of {length} bytes came with the command");
                data.CopyTo(_disk.AsSpan(offset));
                SendStatus(itt, ScsiStatus.Good);
                break;
            }
            default:
                SendCheckCondition(itt, SenseKey.IllegalRequest, 0x20, 0x00); // INVALID COMMAND OPERATION CODE
                break;
        }
    }

    private bool TryGetRange(ReadOnlySpan<byte> cdb, out int offset, out int length)
    {
        var sixteen = cdb[0] is ScsiOpcode.Read16 or ScsiOpcode.Write16;
        var lba = sixteen ? BinaryPrimitives.ReadUInt64BigEndian(cdb[2..]) : BinaryPrimitives.ReadUInt32BigEndian(cdb[2..]);
        var blocks = sixteen ? BinaryPrimitives.ReadUInt32BigEndian(cdb[10..]) : BinaryPrimitives.ReadUInt16BigEndian(cdb[7..]);
        var diskBlocks = (ulong)(_disk.Length / _blockSize);
        offset = length = 0;
        if (lba > diskBlocks || blocks > diskBlocks - lba) return false;
        offset = (int)lba * _blockSize;
        length = (int)blocks * _blockSize;
        return true;
    }

    private void OnInquiry(uint itt, ReadOnlySpan<byte> cdb, uint expectedLength)
    {
        if ((cdb[1] & 1) != 0)
        {
            // Vital product data: only the list of supported pages, which lists itself.
            if (cdb[2] != VpdPage.SupportedPages) SendCheckCondition(itt, SenseKey.IllegalRequest, 0x24, 0x00);
            else SendData(itt, [0x00, VpdPage.SupportedPages, 0x00, 0x01, VpdPage.SupportedPages], expectedLength);
            return;
        }
        Span<byte> standard = stackalloc byte[36];
        standard.Clear();
        standard[2] = 0x06; // SPC-4
        standard[3] = 0x02; // response data format 2
        standard[4] = 36 - 5;
        standard[7] = 0x02; // command queueing
        "IserBlkd"u8.CopyTo(standard[8..]);
        "BENCH MEMORY    "u8.CopyTo(standard[16..]);
        "0001"u8.CopyTo(standard[32..]);
        SendData(itt, standard, expectedLength);
    }

    /// <summary>Data-In PDUs of at most the initiator's MaxRecvDataSegmentLength; GOOD status in the last one.</summary>
    private void SendData(uint itt, ReadOnlySpan<byte> data, uint expectedLength)
    {
        var length = (int)Math.Min((uint)data.Length, expectedLength);
        if (length == 0)
        {
            SendStatus(itt, ScsiStatus.Good, residual: expectedLength);
            return;
        }
        var residual = expectedLength - (uint)length;
        var segment = Math.Min(_initiatorMaxRecvDataSegmentLength, _replies.SegmentCapacity);
        Span<byte> bhs = stackalloc byte[BasicHeaderSegment.Length];
        uint dataSN = 0;
        for (var offset = 0; offset < length; offset += segment)
        {
            var chunk = Math.Min(segment, length - offset);
            var last = offset + chunk == length;
            new DataInPdu
            {
                Final = last,
                HasStatus = last,
                Status = (byte)ScsiStatus.Good,
                Underflow = last && residual > 0,
                ResidualCount = last ? residual : 0,
                DataSegmentLength = chunk,
                InitiatorTaskTag = itt,
                TargetTransferTag = BasicHeaderSegment.ReservedTag,
                StatSN = last ? _statSN++ : 0,
                ExpCmdSN = _expCmdSN,
                MaxCmdSN = MaxCmdSN,
                DataSN = dataSN++,
                BufferOffset = (uint)offset,
            }.Write(bhs);
            _replies.Enqueue(bhs, data.Slice(offset, chunk));
        }
    }

    private void SendStatus(uint itt, ScsiStatus status, ReadOnlySpan<byte> senseSegment = default, uint residual = 0)
    {
        Span<byte> bhs = stackalloc byte[BasicHeaderSegment.Length];
        new ScsiResponsePdu
        {
            Response = IscsiServiceResponse.CommandCompleted,
            Status = (byte)status,
            Underflow = residual > 0,
            ResidualCount = residual,
            DataSegmentLength = senseSegment.Length,
            InitiatorTaskTag = itt,
            StatSN = _statSN++,
            ExpCmdSN = _expCmdSN,
            MaxCmdSN = MaxCmdSN,
        }.Write(bhs);
        _replies.Enqueue(bhs, senseSegment);
    }

    /// <summary>CHECK CONDITION with fixed-format sense data (SPC-4 §4.5.3), behind its 2-byte length (RFC 7143 §11.4.7).</summary>
    private void SendCheckCondition(uint itt, SenseKey key, byte asc, byte ascq)
    {
        Span<byte> segment = stackalloc byte[2 + 18];
        segment.Clear();
        BinaryPrimitives.WriteUInt16BigEndian(segment, 18);
        var sense = segment[2..];
        sense[0] = 0x70;
        sense[2] = (byte)key;
        sense[7] = 10;
        sense[12] = asc;
        sense[13] = ascq;
        SendStatus(itt, ScsiStatus.CheckCondition, segment);
    }

    // ---------------------------------------------------------------- NOP and logout

    private void OnNopOut(ReadOnlySpan<byte> header, ReadOnlySpan<byte> data)
    {
        var nop = NopOutPdu.Read(header);
        if (nop.InitiatorTaskTag == BasicHeaderSegment.ReservedTag) return; // the answer to a ping of ours (we send none)
        Span<byte> bhs = stackalloc byte[BasicHeaderSegment.Length];
        new NopInPdu
        {
            DataSegmentLength = data.Length,
            InitiatorTaskTag = nop.InitiatorTaskTag,
            TargetTransferTag = BasicHeaderSegment.ReservedTag,
            StatSN = _statSN++,
            ExpCmdSN = _expCmdSN,
            MaxCmdSN = MaxCmdSN,
        }.Write(bhs);
        _replies.Enqueue(bhs, data);
    }

    private void OnLogout(ReadOnlySpan<byte> header)
    {
        var logout = LogoutRequestPdu.Read(header);
        Span<byte> bhs = stackalloc byte[BasicHeaderSegment.Length];
        new LogoutResponsePdu
        {
            Response = LogoutResponse.ClosedSuccessfully,
            InitiatorTaskTag = logout.InitiatorTaskTag,
            StatSN = _statSN++,
            ExpCmdSN = _expCmdSN,
            MaxCmdSN = MaxCmdSN,
        }.Write(bhs);
        _replies.Enqueue(bhs, default);
        _replies.CloseAfterPublish();
    }
}
