using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using IserBlockd.BlockDev.Nbd.Protocol;
using IserBlockd.BlockDev.Nbd.Streams;
using Microsoft.Extensions.Logging;

namespace IserBlockd.BlockDev.Nbd;

/// <summary>The outcome of a successful handshake: the export chosen and what was negotiated.
/// The export's connection slot is held and must be released when transmission ends.</summary>
/// <param name="AllocationContext">The client selected <c>base:allocation</c> for this export
/// (NBD_OPT_SET_META_CONTEXT): BLOCK_STATUS is answered with <see cref="NbdHandshake.AllocationContextId"/>.</param>
/// <param name="Transport">What the transmission phase runs on: the connection's transport, or TLS over it
/// after NBD_OPT_STARTTLS.</param>
internal sealed record NbdNegotiatedSession(NbdExport Export, bool StructuredReplies, bool AllocationContext, INbdTransport Transport);

/// <summary>
/// Server side of the fixed newstyle handshake (doc/proto.md, "Handshake"): greeting, client flags,
/// then option haggling until NBD_OPT_EXPORT_NAME or a successful NBD_OPT_GO. Runs once per
/// connection, so it favours clarity over avoiding allocations.
/// </summary>
internal sealed class NbdHandshake
{
    private const NbdHandshakeFlags ServerFlags = NbdHandshakeFlags.FixedNewstyle | NbdHandshakeFlags.NoZeroes;
    private const uint LargestSkippableOption = 1 << 20;

    /// <summary>The id this server gives <c>base:allocation</c>, its only meta context.</summary>
    public const uint AllocationContextId = 1;

    private INbdTransport _transport;
    private readonly NbdTlsOptions? _tls;
    private bool _secured;
    private readonly Func<string, NbdExport?> _findExport;
    private readonly Func<IReadOnlyCollection<NbdExport>> _listExports;
    private readonly NbdServerOptions _options;
    private readonly ILogger _logger;
    private readonly string _peer;
    private bool _noZeroes;
    private bool _structuredReplies;
    /// <summary>The export for which <c>base:allocation</c> was selected, if any; another export in GO drops it.</summary>
    private string? _allocationContextExport;

    public NbdHandshake(INbdTransport transport, Func<string, NbdExport?> findExport,
        Func<IReadOnlyCollection<NbdExport>> listExports, NbdServerOptions options, ILogger logger)
    {
        _transport = transport;
        _findExport = findExport;
        _listExports = listExports;
        _options = options;
        _tls = options.Tls;
        _logger = logger;
        _peer = transport.RemoteDescription;
    }

    /// <summary>The transport as it is now (TLS once NBD_OPT_STARTTLS succeeded); the caller disposes it
    /// when the handshake fails.</summary>
    public INbdTransport Transport => _transport;

    /// <summary>Negotiates; null when the client aborted, went away or broke the protocol (the caller
    /// then closes the connection).</summary>
    public async Task<NbdNegotiatedSession?> RunAsync(CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.HandshakeTimeout);
        // Our transport calls take no token: a timed-out or cancelled handshake is a hard disconnect.
        await using var abort = timeout.Token.UnsafeRegister(static t => ((INbdTransport)t!).Abort(), _transport);
        try
        {
            var session = await NegotiateAsync().ConfigureAwait(false);
            // An aborted transport reads as end of stream: say why it ended.
            if (session == null && timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
                NbdLog.HandshakeFailed(_logger, _peer, $"did not finish within {_options.HandshakeTimeout.TotalSeconds:0.#} s");
            return session;
        }
        catch (Exception e) when (e is NbdProtocolException or System.Net.Sockets.SocketException or IOException or ObjectDisposedException
                                       or System.Security.Authentication.AuthenticationException)
        {
            var reason = timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested
                ? $"did not finish within {_options.HandshakeTimeout.TotalSeconds:0.#} s"
                : e.Message;
            NbdLog.HandshakeFailed(_logger, _peer, reason);
            return null;
        }
    }

    private async Task<NbdNegotiatedSession?> NegotiateAsync()
    {
        var greeting = new byte[NbdServerGreeting.Size];
        new NbdServerGreeting(ServerFlags).Write(greeting);
        await SendAllAsync(greeting).ConfigureAwait(false);

        var clientFlagBytes = new byte[NbdClientGreeting.Size];
        if (!await ReceiveExactlyAsync(clientFlagBytes).ConfigureAwait(false)) return null;
        var clientFlags = NbdClientGreeting.Read(clientFlagBytes).Flags;
        var unknown = clientFlags & ~(NbdClientFlags.FixedNewstyle | NbdClientFlags.NoZeroes);
        if (unknown != 0)
            throw new NbdProtocolException($"client flags 0x{(uint)clientFlags:x} include ones the server did not offer");
        _noZeroes = (clientFlags & NbdClientFlags.NoZeroes) != 0;

        var header = new byte[NbdOptionHeader.Size];
        for (var count = 0; ; count++)
        {
            if (count >= _options.MaxOptions)
                throw new NbdProtocolException($"more than {_options.MaxOptions} options without entering transmission");
            if (!await ReceiveExactlyAsync(header).ConfigureAwait(false)) return null;
            var option = NbdOptionHeader.Read(header);

            if (option.Length > _options.MaxOptionLength)
            {
                if (option.Length > LargestSkippableOption)
                    throw new NbdProtocolException($"option {option.Option} carries {option.Length} bytes of data");
                if (!await SkipAsync(option.Length).ConfigureAwait(false)) return null;
                await ReplyErrorAsync(option.Option, NbdOptionReplyType.ErrTooBig, $"option data of {option.Length} bytes is too large").ConfigureAwait(false);
                continue;
            }
            var data = new byte[option.Length];
            if (!await ReceiveExactlyAsync(data).ConfigureAwait(false)) return null;

            if (_tls is { Required: true } && !_secured && option.Option is not (NbdOption.StartTls or NbdOption.Abort))
            {
                if (option.Option == NbdOption.ExportName)
                    throw new NbdProtocolException("NBD_OPT_EXPORT_NAME without TLS, which this server requires");
                await ReplyErrorAsync(option.Option, NbdOptionReplyType.ErrTlsRequired, "TLS is required: send NBD_OPT_STARTTLS first").ConfigureAwait(false);
                continue;
            }

            switch (option.Option)
            {
                case NbdOption.ExportName:
                    return await HandleExportNameAsync(data).ConfigureAwait(false);
                case NbdOption.Abort:
                    // The client may already have closed; an ACK that cannot be sent is fine.
                    try { await ReplyAsync(option.Option, NbdOptionReplyType.Ack, default).ConfigureAwait(false); }
                    catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException) { }
                    return null;
                case NbdOption.List:
                    await HandleListAsync(data).ConfigureAwait(false);
                    break;
                case NbdOption.Info:
                case NbdOption.Go:
                    var session = await HandleInfoAsync(option.Option, data).ConfigureAwait(false);
                    if (session != null) return session;
                    break;
                case NbdOption.StructuredReply:
                    if (data.Length != 0)
                    {
                        await ReplyErrorAsync(option.Option, NbdOptionReplyType.ErrInvalid, "NBD_OPT_STRUCTURED_REPLY takes no data").ConfigureAwait(false);
                        break;
                    }
                    _structuredReplies = true;
                    await ReplyAsync(option.Option, NbdOptionReplyType.Ack, default).ConfigureAwait(false);
                    break;
                case NbdOption.ListMetaContext:
                case NbdOption.SetMetaContext:
                    await HandleMetaContextAsync(option.Option, data).ConfigureAwait(false);
                    break;
                case NbdOption.StartTls:
                    await HandleStartTlsAsync(data).ConfigureAwait(false);
                    break;
                default:
                    await ReplyErrorAsync(option.Option, NbdOptionReplyType.ErrUnsupported, $"option {(uint)option.Option} is not supported").ConfigureAwait(false);
                    break;
            }
        }
    }

    private async Task<NbdNegotiatedSession?> HandleExportNameAsync(byte[] data)
    {
        // This option cannot be answered with an error: refusing it means hanging up.
        var name = NbdString.Read(data);
        var export = _findExport(name);
        if (export == null)
            throw new NbdProtocolException($"NBD_OPT_EXPORT_NAME for unknown export '{name}'");
        if (_options.RequireBlockSizeNegotiation && export.BlockSizes.Minimum > 1)
            throw new NbdProtocolException($"export '{name}' needs block size negotiation, which NBD_OPT_EXPORT_NAME cannot do");
        if (!export.TryAcquireConnection(out var firstRefusal))
        {
            LogRefusal(export, firstRefusal);
            throw new NbdProtocolException($"export '{name}' already has its maximum of {export.MaxConnections} connections");
        }
        try
        {
            var reply = new byte[NbdExportNameReply.GetSize(_noZeroes)];
            new NbdExportNameReply((ulong)export.Device.Geometry.Size, export.GetTransmissionFlags(_structuredReplies)).Write(reply, _noZeroes);
            await SendAllAsync(reply).ConfigureAwait(false);
        }
        catch
        {
            export.ReleaseConnection();
            throw;
        }
        return Negotiated(export);
    }

    private void LogRefusal(NbdExport export, bool first)
    {
        if (first) NbdLog.ConnectionLimitReached(_logger, export, export.MaxConnections, _peer);
        else NbdLog.ConnectionRefused(_logger, export, export.MaxConnections, _peer);
    }

    private NbdNegotiatedSession Negotiated(NbdExport export) =>
        new(export, _structuredReplies, _structuredReplies && _allocationContextExport == export.Name, _transport);

    /// <summary>NBD_OPT_STARTTLS: ACK in the clear, then the TLS handshake; everything after runs through
    /// TLS, and what was negotiated before it is forgotten (doc/proto.md, "TLS support").</summary>
    private async Task HandleStartTlsAsync(byte[] data)
    {
        if (_tls == null)
        {
            await ReplyErrorAsync(NbdOption.StartTls, NbdOptionReplyType.ErrUnsupported, "TLS is not configured on this server").ConfigureAwait(false);
            return;
        }
        if (data.Length != 0 || _secured)
        {
            await ReplyErrorAsync(NbdOption.StartTls, NbdOptionReplyType.ErrInvalid,
                _secured ? "TLS is already on" : "NBD_OPT_STARTTLS takes no data").ConfigureAwait(false);
            return;
        }
        await ReplyAsync(NbdOption.StartTls, NbdOptionReplyType.Ack, default).ConfigureAwait(false);
        var tls = new SslStream(new NbdTransportStream(_transport), leaveInnerStreamOpen: true, ValidateClientCertificate);
        try
        {
            await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
            {
                ServerCertificate = _tls.Certificate,
                ClientCertificateRequired = _tls.VerifyPeer,
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            }).ConfigureAwait(false);
        }
        catch
        {
            await tls.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        _transport = new SslStreamTransport(tls, _transport);
        _secured = true;
        _structuredReplies = false;
        _allocationContextExport = null;
        NbdLog.TlsStarted(_logger, _peer, tls.SslProtocol, tls.RemoteCertificate?.Subject ?? "no client certificate");
    }

    /// <summary>With <see cref="NbdTlsOptions.VerifyPeer"/>, the client's certificate must chain to the
    /// configured CA (and nothing else: the system's roots do not count).</summary>
    private bool ValidateClientCertificate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (!_tls!.VerifyPeer) return true;
        if (certificate == null)
        {
            NbdLog.HandshakeFailed(_logger, _peer, "no client certificate, which this server requires");
            return false;
        }
        using var custom = new X509Chain();
        custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        custom.ChainPolicy.CustomTrustStore.AddRange(_tls.Authority);
        custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        var valid = custom.Build(certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
        if (!valid)
            NbdLog.HandshakeFailed(_logger, _peer, $"client certificate '{certificate.Subject}' is not signed by the configured CA");
        return valid;
    }

    /// <summary>NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT. The one context is
    /// <c>base:allocation</c>; LIST with no queries or with "base:" names it, unknown queries are passed
    /// over, and SET replaces whatever an earlier SET selected.</summary>
    private async Task HandleMetaContextAsync(NbdOption option, byte[] data)
    {
        if (!_structuredReplies)
        {
            await ReplyErrorAsync(option, NbdOptionReplyType.ErrInvalid, "meta contexts need structured replies (NBD_OPT_STRUCTURED_REPLY) first").ConfigureAwait(false);
            return;
        }
        NbdMetaContextRequest request;
        try
        {
            request = NbdMetaContextRequest.Parse(data);
        }
        catch (NbdProtocolException e)
        {
            await ReplyErrorAsync(option, NbdOptionReplyType.ErrInvalid, e.Message).ConfigureAwait(false);
            return;
        }
        if (option == NbdOption.SetMetaContext) _allocationContextExport = null;
        if (_findExport(request.ExportName) == null)
        {
            await ReplyErrorAsync(option, NbdOptionReplyType.ErrUnknown, $"there is no export named '{request.ExportName}'").ConfigureAwait(false);
            return;
        }
        var list = option == NbdOption.ListMetaContext;
        var selected = request.Queries.Any(q => q == NbdMetaContextReply.BaseAllocation || (list && q == "base:")) ||
                       (list && request.Queries.Count == 0);
        if (selected)
        {
            var reply = new NbdMetaContextReply(list ? 0 : AllocationContextId, NbdMetaContextReply.BaseAllocation);
            var payload = new byte[reply.GetSize()];
            reply.Write(payload);
            await ReplyAsync(option, NbdOptionReplyType.MetaContext, payload).ConfigureAwait(false);
            if (!list) _allocationContextExport = request.ExportName;
        }
        await ReplyAsync(option, NbdOptionReplyType.Ack, default).ConfigureAwait(false);
    }

    private async Task HandleListAsync(byte[] data)
    {
        if (data.Length != 0)
        {
            await ReplyErrorAsync(NbdOption.List, NbdOptionReplyType.ErrInvalid, "NBD_OPT_LIST takes no data").ConfigureAwait(false);
            return;
        }
        foreach (var export in _listExports())
        {
            var entry = new NbdServerListEntry(export.Name, export.Description);
            var payload = new byte[entry.GetSize()];
            entry.Write(payload);
            await ReplyAsync(NbdOption.List, NbdOptionReplyType.Server, payload).ConfigureAwait(false);
        }
        await ReplyAsync(NbdOption.List, NbdOptionReplyType.Ack, default).ConfigureAwait(false);
    }

    /// <summary>NBD_OPT_INFO and NBD_OPT_GO: information replies, then ACK (and, for GO, transmission)
    /// or an error.</summary>
    private async Task<NbdNegotiatedSession?> HandleInfoAsync(NbdOption option, byte[] data)
    {
        NbdExportInfoRequest request;
        try
        {
            request = NbdExportInfoRequest.Parse(data);
        }
        catch (NbdProtocolException e)
        {
            await ReplyErrorAsync(option, NbdOptionReplyType.ErrInvalid, e.Message).ConfigureAwait(false);
            return null;
        }
        var export = _findExport(request.ExportName);
        if (export == null)
        {
            await ReplyErrorAsync(option, NbdOptionReplyType.ErrUnknown, $"there is no export named '{request.ExportName}'").ConfigureAwait(false);
            return null;
        }

        var geometry = export.Device.Geometry;
        var exportInfo = new byte[NbdInfoExport.Length];
        new NbdInfoExport((ulong)geometry.Size, export.GetTransmissionFlags(_structuredReplies)).Write(exportInfo);
        await ReplyAsync(option, NbdOptionReplyType.Info, exportInfo).ConfigureAwait(false);

        if (request.Requests(NbdInfoType.Name))
        {
            var info = new NbdInfoName(export.Name);
            var bytes = new byte[info.GetLength()];
            info.Write(bytes);
            await ReplyAsync(option, NbdOptionReplyType.Info, bytes).ConfigureAwait(false);
        }
        if (request.Requests(NbdInfoType.Description) && export.Description.Length > 0)
        {
            var info = new NbdInfoDescription(export.Description);
            var bytes = new byte[info.GetLength()];
            info.Write(bytes);
            await ReplyAsync(option, NbdOptionReplyType.Info, bytes).ConfigureAwait(false);
        }
        // Always sent: it is what the server enforces, and it must precede a BLOCK_SIZE_REQD error.
        var sizes = export.BlockSizes;
        var blockSize = new byte[NbdInfoBlockSize.Length];
        new NbdInfoBlockSize(sizes.Minimum, sizes.Preferred, sizes.Maximum).Write(blockSize);
        await ReplyAsync(option, NbdOptionReplyType.Info, blockSize).ConfigureAwait(false);

        if (_options.RequireBlockSizeNegotiation && sizes.Minimum > 1 && !request.Requests(NbdInfoType.BlockSize))
        {
            await ReplyErrorAsync(option, NbdOptionReplyType.ErrBlockSizeRequired,
                $"export '{export.Name}' needs a minimum block size of {sizes.Minimum}: request NBD_INFO_BLOCK_SIZE").ConfigureAwait(false);
            return null;
        }
        if (option == NbdOption.Info)
        {
            await ReplyAsync(option, NbdOptionReplyType.Ack, default).ConfigureAwait(false);
            return null;
        }
        if (!export.TryAcquireConnection(out var firstRefusal))
        {
            LogRefusal(export, firstRefusal);
            await ReplyErrorAsync(option, NbdOptionReplyType.ErrPolicy,
                $"export '{export.Name}' already has its maximum of {export.MaxConnections} connections").ConfigureAwait(false);
            return null;
        }
        try
        {
            await ReplyAsync(option, NbdOptionReplyType.Ack, default).ConfigureAwait(false);
        }
        catch
        {
            export.ReleaseConnection();
            throw;
        }
        return Negotiated(export);
    }

    private Task ReplyErrorAsync(NbdOption option, NbdOptionReplyType type, string message) =>
        ReplyAsync(option, type, Encoding.UTF8.GetBytes(message.Length > 1024 ? message[..1024] : message));

    private async Task ReplyAsync(NbdOption option, NbdOptionReplyType type, ReadOnlyMemory<byte> data)
    {
        var reply = new byte[NbdOptionReplyHeader.Size + data.Length];
        new NbdOptionReplyHeader(option, type, (uint)data.Length).Write(reply);
        data.CopyTo(reply.AsMemory(NbdOptionReplyHeader.Size));
        await SendAllAsync(reply).ConfigureAwait(false);
        if (_logger.IsEnabled(LogLevel.Debug)) NbdLog.OptionAnswered(_logger, _peer, option, type);
    }

    private async Task SendAllAsync(ReadOnlyMemory<byte> data)
    {
        while (!data.IsEmpty)
        {
            var sent = await _transport.SendAsync(data).ConfigureAwait(false);
            if (sent <= 0) throw new IOException("the transport accepted no bytes");
            data = data[sent..];
        }
    }

    private async Task<bool> ReceiveExactlyAsync(Memory<byte> destination)
    {
        var filled = 0;
        while (filled < destination.Length)
        {
            var received = await _transport.ReceiveAsync(destination[filled..]).ConfigureAwait(false);
            if (received <= 0)
            {
                if (filled > 0) throw new NbdProtocolException("the client closed the connection in the middle of a message");
                return false;
            }
            filled += received;
        }
        return true;
    }

    private async Task<bool> SkipAsync(uint length)
    {
        var scratch = new byte[Math.Min(length, 64u << 10)];
        while (length > 0)
        {
            var received = await _transport.ReceiveAsync(scratch.AsMemory(0, (int)Math.Min(length, (uint)scratch.Length))).ConfigureAwait(false);
            if (received <= 0) return false;
            length -= (uint)received;
        }
        return true;
    }
}
