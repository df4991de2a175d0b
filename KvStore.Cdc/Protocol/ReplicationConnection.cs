using System.IO.Pipelines;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace KvStore.Cdc.Protocol;

/// <summary>
/// One authenticated protocol connection: TCP, optional TLS, HandshakeV10 / HandshakeResponse41 and auth,
/// then simple commands (COM_QUERY with a text result set reader) until the dump command turns it into a
/// binlog stream.
/// </summary>
internal sealed class ReplicationConnection : IAsyncDisposable
{
    private const int PipeBufferSize = 64 * 1024;

    private readonly BinlogClientOptions _options;
    private readonly Stream _transport;
    private readonly PacketReader _reader;
    private readonly PacketWriter _writer;
    private Stream _stream;
    private PipeReader _pipeReader;
    private PipeWriter _pipeWriter;
    private bool _streaming;
    private bool _disposed;

    private ReplicationConnection(Stream transport, BinlogClientOptions options)
    {
        _options = options;
        _transport = transport;
        _stream = transport;
        _pipeReader = CreateReader(transport);
        _pipeWriter = CreateWriter(transport);
        _reader = new PacketReader(_pipeReader, options.TimeProvider, options.MaxPacketSize) { ReadTimeout = options.ConnectTimeout };
        _writer = new PacketWriter(_pipeWriter);
    }

    /// <summary>The server greeting.</summary>
    public InitialHandshake Handshake { get; private set; } = null!;

    public ServerVersion ServerVersion => Handshake.Version;

    /// <summary>Server-side connection id (<c>KILL</c> target).</summary>
    public uint ConnectionId => Handshake.ConnectionId;

    /// <summary>True when the connection was upgraded to TLS.</summary>
    public bool IsTls => _stream is SslStream;

    /// <summary>The auth plugin that finally succeeded.</summary>
    public string AuthenticationPlugin { get; private set; } = string.Empty;

    /// <summary>True when caching_sha2_password needed full authentication (no cached hash on the server).</summary>
    public bool UsedFullAuthentication { get; private set; }

    /// <summary>The packet reader (handed to the binlog stream after the dump command).</summary>
    internal PacketReader Packets => _reader;

    /// <summary>Connects over TCP, negotiates TLS and authenticates.</summary>
    /// <exception cref="ReplicationConnectionLostException">The server cannot be reached.</exception>
    /// <exception cref="ReplicationTimeoutException">Connect, TLS and auth took longer than <see cref="BinlogClientOptions.ConnectTimeout"/>.</exception>
    /// <exception cref="ServerErrorException">The server refused (e.g. 1045 access denied).</exception>
    /// <exception cref="ReplicationSetupException">TLS or authentication could not be done safely.</exception>
    public static async Task<ReplicationConnection> OpenAsync(BinlogClientOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        using var timeout = new CancellationTokenSource(options.ConnectTimeout, options.TimeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(options.Host, options.Port, linked.Token).ConfigureAwait(false);
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            socket.Dispose();
            throw new ReplicationTimeoutException(options.ConnectTimeout, $"connecting to {options.Host}:{options.Port}", ex);
        }
        catch (SocketException ex)
        {
            socket.Dispose();
            throw new ReplicationConnectionLostException($"Cannot connect to {options.Host}:{options.Port}: {ex.Message}", ex);
        }

        return await OpenAsync(new NetworkStream(socket, ownsSocket: true), options, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Runs the handshake over an already connected duplex stream (which the connection then owns).</summary>
    internal static async Task<ReplicationConnection> OpenAsync(Stream transport, BinlogClientOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(transport);
        ArgumentNullException.ThrowIfNull(options);
        var connection = new ReplicationConnection(transport, options);
        using var timeout = new CancellationTokenSource(options.ConnectTimeout, options.TimeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        try
        {
            await connection.HandshakeAsync(linked.Token).ConfigureAwait(false);
            connection._reader.ReadTimeout = options.CommandTimeout;
            return connection;
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw new ReplicationTimeoutException(options.ConnectTimeout, $"connecting to {options.Host}:{options.Port}", ex);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Sends a command payload as a new command (sequence id 0).</summary>
    public async ValueTask SendCommandAsync(ReadOnlyMemory<byte> payload, CancellationToken cancellationToken = default)
    {
        ThrowIfUnusable();
        _writer.SequenceId = 0;
        await _writer.SendAsync(payload, cancellationToken).ConfigureAwait(false);
        _reader.SequenceId = _writer.SequenceId;
    }

    /// <summary>Reads the next response payload (valid until the next read).</summary>
    public ValueTask<ReadOnlyMemory<byte>> ReadPacketAsync(CancellationToken cancellationToken = default) =>
        _reader.ReadPayloadAsync(cancellationToken);

    /// <summary>Runs a statement that returns no rows (SET ...); throws <see cref="ServerErrorException"/> on ERR.</summary>
    public async Task ExecuteAsync(string sql, CancellationToken cancellationToken = default) =>
        await QueryAsync(sql, cancellationToken).ConfigureAwait(false);

    /// <summary>Runs COM_QUERY and reads the whole text result set (or the OK packet as an empty set).</summary>
    public async Task<TextResultSet> QueryAsync(string sql, CancellationToken cancellationToken = default)
    {
        _reader.Activity = $"waiting for the result of '{Shorten(sql)}'";
        await SendCommandAsync(ReplicationCommands.Query(sql), cancellationToken).ConfigureAwait(false);
        var first = await ReadPacketAsync(cancellationToken).ConfigureAwait(false);
        var span = first.Span;
        if (ServerPackets.IsErr(span))
        {
            throw ServerPackets.ToException(span, $"running '{Shorten(sql)}'");
        }

        if (span.Length > 0 && span[0] == ServerPackets.OkHeader)
        {
            return TextResultSet.Empty;
        }

        if (span.Length > 0 && span[0] == 0xFB)
        {
            throw new ReplicationProtocolException("The server asked for LOCAL INFILE data, which this client never sends.");
        }

        var columnCount = (int)new PayloadReader(span).ReadLengthEncodedInteger();
        var columns = new string[columnCount];
        for (var i = 0; i < columnCount; i++)
        {
            var definition = await ReadPacketAsync(cancellationToken).ConfigureAwait(false);
            columns[i] = ReadColumnName(definition.Span);
        }

        var eof = await ReadPacketAsync(cancellationToken).ConfigureAwait(false);
        if (!ServerPackets.IsEof(eof.Span))
        {
            throw new ReplicationProtocolException("Expected EOF after the column definitions.");
        }

        var rows = new List<string?[]>();
        while (true)
        {
            var packet = await ReadPacketAsync(cancellationToken).ConfigureAwait(false);
            span = packet.Span;
            if (ServerPackets.IsEof(span))
            {
                return new TextResultSet(columns, rows);
            }

            if (ServerPackets.IsErr(span))
            {
                throw ServerPackets.ToException(span, $"running '{Shorten(sql)}'");
            }

            var reader = new PayloadReader(span);
            var row = new string?[columnCount];
            for (var i = 0; i < columnCount; i++)
            {
                row[i] = reader.ReadLengthEncodedStringOrNull();
            }

            rows.Add(row);
        }
    }

    /// <summary>Marks the connection as carrying a binlog dump: no more commands, the read timeout becomes the dump's.</summary>
    internal PacketReader BeginStreaming(TimeSpan readTimeout)
    {
        _streaming = true;
        _reader.ReadTimeout = readTimeout;
        _reader.Activity = "waiting for binlog events or heartbeats";
        return _reader;
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (!_streaming && Handshake is not null && AuthenticationPlugin.Length > 0)
        {
            // Be polite when idle so the server does not log an aborted connection; never wait for it.
            try
            {
                _writer.SequenceId = 0;
                _writer.Write(ReplicationCommands.Quit());
                using var quitTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(1), _options.TimeProvider);
                await _writer.FlushAsync(quitTimeout.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is ReplicationException or OperationCanceledException or IOException)
            {
                // Closing anyway.
            }
        }

        _reader.Dispose();
        await _pipeReader.CompleteAsync().ConfigureAwait(false);
        await _pipeWriter.CompleteAsync().ConfigureAwait(false);
        if (!ReferenceEquals(_stream, _transport))
        {
            await _stream.DisposeAsync().ConfigureAwait(false);
        }

        await _transport.DisposeAsync().ConfigureAwait(false);
    }

    private static PipeReader CreateReader(Stream stream) =>
        PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: PipeBufferSize, minimumReadSize: 4096, leaveOpen: true));

    private static PipeWriter CreateWriter(Stream stream) =>
        PipeWriter.Create(stream, new StreamPipeWriterOptions(leaveOpen: true));

    private static string Shorten(string sql) => sql.Length <= 80 ? sql : string.Concat(sql.AsSpan(0, 77), "...");

    private static string ReadColumnName(ReadOnlySpan<byte> definition)
    {
        // ColumnDefinition41: catalog, schema, table, org_table, name, org_name, ...
        var reader = new PayloadReader(definition);
        for (var i = 0; i < 4; i++)
        {
            reader.TryReadLengthEncodedBytes(out _);
        }

        return reader.ReadLengthEncodedStringOrNull() ?? string.Empty;
    }

    private void ThrowIfUnusable()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_streaming)
        {
            throw new InvalidOperationException("The connection is streaming the binlog; it accepts no more commands.");
        }
    }

    private async ValueTask SendAsync(ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        _writer.SequenceId = _reader.SequenceId;
        await _writer.SendAsync(payload, cancellationToken).ConfigureAwait(false);
        _reader.SequenceId = _writer.SequenceId;
    }

    private async Task HandshakeAsync(CancellationToken cancellationToken)
    {
        _reader.SequenceId = 0;
        _reader.Activity = "waiting for the server greeting";
        var greeting = await _reader.ReadPayloadAsync(cancellationToken).ConfigureAwait(false);
        Handshake = InitialHandshake.Parse(greeting.Span);

        var serverOffersTls = (Handshake.Capabilities & ProtocolCapabilities.Ssl) != 0;
        var useTls = _options.SslMode switch
        {
            SslMode.None => false,
            SslMode.Preferred => serverOffersTls,
            _ => serverOffersTls ? true : throw new ReplicationSetupException(
                ReplicationErrorCode.Tls,
                $"SslMode {_options.SslMode} requires TLS but the server ({ServerVersion.Text}) does not offer it; configure ssl_cert/ssl_key on the server."),
        };

        var capabilities = HandshakeResponse.ClientCapabilities(Handshake.Capabilities, useTls);
        if (useTls)
        {
            await SendAsync(HandshakeResponse.BuildSslRequest(capabilities), cancellationToken).ConfigureAwait(false);
            await UpgradeToTlsAsync(cancellationToken).ConfigureAwait(false);
        }

        _reader.Activity = "authenticating";
        await AuthenticateAsync(capabilities, cancellationToken).ConfigureAwait(false);
    }

    private async Task UpgradeToTlsAsync(CancellationToken cancellationToken)
    {
        // Nothing can be buffered: the server waits for the TLS ClientHello after the SSLRequest.
        await _pipeReader.CompleteAsync().ConfigureAwait(false);
        await _pipeWriter.CompleteAsync().ConfigureAwait(false);

        var observedErrors = SslPolicyErrors.None;
        var mode = _options.SslMode;
        var disableValidation = _options.DisableCertificateValidation;
        var sslOptions = new SslClientAuthenticationOptions
        {
            TargetHost = _options.Host,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            RemoteCertificateValidationCallback = (_, _, _, errors) =>
            {
                observedErrors = errors;
                if (disableValidation)
                {
                    return true;
                }

                if (mode == SslMode.VerifyCA)
                {
                    errors &= ~SslPolicyErrors.RemoteCertificateNameMismatch;
                }

                return errors == SslPolicyErrors.None;
            },
        };

        if (_options.SslCaFile is { } caFile)
        {
            var roots = new X509Certificate2Collection();
            roots.ImportFromPemFile(caFile);
            if (roots.Count == 0)
            {
                throw new ReplicationSetupException(ReplicationErrorCode.Tls, $"SslCaFile '{caFile}' holds no PEM certificate.");
            }

            var policy = new X509ChainPolicy
            {
                TrustMode = X509ChainTrustMode.CustomRootTrust,
                RevocationMode = X509RevocationMode.NoCheck,
            };
            policy.CustomTrustStore.AddRange(roots);
            sslOptions.CertificateChainPolicy = policy;
        }

        var ssl = new SslStream(_transport, leaveInnerStreamOpen: true);
        _stream = ssl;
        try
        {
            await ssl.AuthenticateAsClientAsync(sslOptions, cancellationToken).ConfigureAwait(false);
        }
        catch (AuthenticationException ex)
        {
            var reason = observedErrors == SslPolicyErrors.None ? ex.Message : $"certificate errors: {observedErrors}";
            throw new ReplicationSetupException(
                ReplicationErrorCode.Tls,
                $"TLS with {_options.Host} failed ({reason}). Set SslCaFile to the CA that signed the server certificate " +
                "(or use SslMode VerifyCA when the host name differs); DisableCertificateValidation is for tests only.",
                ex);
        }
        catch (IOException ex)
        {
            throw new ReplicationConnectionLostException($"The connection failed during the TLS handshake: {ex.Message}", ex);
        }

        _pipeReader = CreateReader(ssl);
        _pipeWriter = CreateWriter(ssl);
        _reader.ReplaceReader(_pipeReader);
        _writer.ReplaceWriter(_pipeWriter);
    }

    private async Task AuthenticateAsync(ProtocolCapabilities capabilities, CancellationToken cancellationToken)
    {
        var plugin = Handshake.AuthPluginName;
        if (plugin is not (AuthenticationScrambles.NativePassword or AuthenticationScrambles.CachingSha2Password))
        {
            // Answer for mysql_native_password; a server whose default is something else switches us.
            plugin = AuthenticationScrambles.NativePassword;
        }

        var nonce = Handshake.Scramble;
        var response = AuthResponse(plugin, nonce);
        await SendAsync(HandshakeResponse.Build(capabilities, _options.UserName, response, plugin), cancellationToken).ConfigureAwait(false);

        while (true)
        {
            var packet = await _reader.ReadPayloadAsync(cancellationToken).ConfigureAwait(false);
            var span = packet.Span;
            if (span.IsEmpty)
            {
                throw new ReplicationProtocolException("Empty packet during authentication.");
            }

            switch (span[0])
            {
                case ServerPackets.OkHeader:
                    AuthenticationPlugin = plugin;
                    return;

                case ServerPackets.ErrHeader:
                    throw ServerPackets.ToException(span, $"authenticating as '{_options.UserName}'");

                case ServerPackets.EofHeader:
                    if (span.Length == 1)
                    {
                        throw new ReplicationSetupException(ReplicationErrorCode.Authentication, "The server asked for the pre-4.1 password hash (mysql_old_password), which is insecure and not supported.");
                    }

                    // AuthSwitchRequest: 0xFE, plugin name NUL, plugin data (a fresh nonce, NUL-terminated).
                    var reader = new PayloadReader(span[1..]);
                    plugin = reader.ReadNullTerminatedString();
                    var data = reader.Rest;
                    nonce = (data.Length > 0 && data[^1] == 0 ? data[..^1] : data).ToArray();
                    response = AuthResponse(plugin, nonce);
                    await SendAsync(response, cancellationToken).ConfigureAwait(false);
                    break;

                case 0x01 when plugin == AuthenticationScrambles.CachingSha2Password && span.Length == 2 && span[1] == 0x03:
                    // Fast authentication succeeded; an OK packet follows.
                    break;

                case 0x01 when plugin == AuthenticationScrambles.CachingSha2Password && span.Length == 2 && span[1] == 0x04:
                    UsedFullAuthentication = true;
                    await FullAuthenticationAsync(nonce, cancellationToken).ConfigureAwait(false);
                    break;

                default:
                    throw new ReplicationProtocolException($"Unexpected packet 0x{span[0]:X2} ({span.Length} bytes) during {plugin} authentication.");
            }
        }
    }

    private byte[] AuthResponse(string plugin, ReadOnlySpan<byte> nonce) => plugin switch
    {
        AuthenticationScrambles.NativePassword => AuthenticationScrambles.NativePasswordResponse(nonce, _options.Password),
        AuthenticationScrambles.CachingSha2Password => AuthenticationScrambles.CachingSha2Response(nonce, _options.Password),
        AuthenticationScrambles.ClearPassword when IsTls => AuthenticationScrambles.ClearPasswordResponse(_options.Password),
        AuthenticationScrambles.ClearPassword => throw new ReplicationSetupException(
            ReplicationErrorCode.Authentication,
            "The server asked for mysql_clear_password over an unencrypted connection; refusing to send the password in clear. Use TLS."),
        _ => throw new ReplicationSetupException(
            ReplicationErrorCode.Authentication,
            $"The account '{_options.UserName}' uses auth plugin '{plugin}', which is not supported; use mysql_native_password or caching_sha2_password."),
    };

    private async Task FullAuthenticationAsync(byte[] nonce, CancellationToken cancellationToken)
    {
        if (IsTls)
        {
            await SendAsync(AuthenticationScrambles.ClearPasswordResponse(_options.Password), cancellationToken).ConfigureAwait(false);
            return;
        }

        string publicKey;
        if (_options.ServerRsaPublicKeyFile is { } keyFile)
        {
            publicKey = await File.ReadAllTextAsync(keyFile, cancellationToken).ConfigureAwait(false);
        }
        else if (_options.AllowPublicKeyRetrieval)
        {
            await SendAsync(new byte[] { 0x02 }, cancellationToken).ConfigureAwait(false);
            var packet = await _reader.ReadPayloadAsync(cancellationToken).ConfigureAwait(false);
            var span = packet.Span;
            if (ServerPackets.IsErr(span))
            {
                throw ServerPackets.ToException(span, "fetching the server RSA public key");
            }

            if (span.Length < 2 || span[0] != 0x01)
            {
                throw new ReplicationProtocolException("Expected the server RSA public key (0x01 + PEM).");
            }

            publicKey = Encoding.ASCII.GetString(span[1..]);
        }
        else
        {
            throw new ReplicationSetupException(
                ReplicationErrorCode.Authentication,
                $"caching_sha2_password needs full authentication for '{_options.UserName}' (the server has no cached hash), which over " +
                "plain TCP needs the server's RSA public key. Use TLS (SslMode Required), pin the key with ServerRsaPublicKeyFile, " +
                "or set AllowPublicKeyRetrieval (exposes the password to a man in the middle).");
        }

        // MySQL switched the RSA padding to OAEP in 8.0.5.
        var useOaep = ServerVersion.IsMariaDb || ServerVersion.IsAtLeast(8, 0, 5);
        await SendAsync(AuthenticationScrambles.RsaEncryptedPassword(publicKey, nonce, _options.Password, useOaep), cancellationToken).ConfigureAwait(false);
    }
}
