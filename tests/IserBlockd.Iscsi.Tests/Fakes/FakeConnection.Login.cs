using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using IserBlockd.Iscsi.Negotiation;
using IserBlockd.Iscsi.Pdu;
using IserBlockd.Iscsi.Scsi;
using IserBlockd.Iscsi.Security;

namespace IserBlockd.Iscsi.Tests.Fakes;

/// <summary>The login phase of the fake target: security (CHAP), operational negotiation, redirection, failures.</summary>
public sealed partial class FakeConnection
{
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
}
