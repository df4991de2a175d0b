using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using KvStore.Cdc.Protocol;
using KvStore.Cdc.Tests.Protocol;

namespace KvStore.Cdc.Tests;

/// <summary>Handshake, TLS and authentication against a scripted loopback server.</summary>
public sealed class ProtocolAuthTests
{
    private const string Password = "s3cret-pässword";
    private const string MariaDbVersion = "5.5.5-10.11.19-MariaDB-0+deb12u1-log";
    private const string MySqlVersion = "8.0.36";

    [Fact]
    public async Task Native_password_over_plain_tcp_then_a_text_query()
    {
        await using var server = new FakeServer();
        var script = Task.Run(async () =>
        {
            await server.AcceptAsync();
            await server.SendGreetingAsync(MariaDbVersion, "mysql_native_password");
            var (capabilities, user, auth, plugin) = FakeServer.ParseResponse(await server.ReadAsync());
            Assert.Equal(0x00088205u, capabilities);
            Assert.Equal("cdc", user);
            Assert.Equal("mysql_native_password", plugin);
            Assert.Equal(NativeReference(server.Nonce, Password), auth);
            await server.SendAsync(FakeServer.Ok);

            var query = await server.ReadCommandAsync();
            Assert.Equal("\u0003SELECT @master_binlog_checksum", Encoding.UTF8.GetString(query));
            await server.SendResultSetAsync("@master_binlog_checksum", "CRC32");

            var set = await server.ReadCommandAsync();
            Assert.Equal(0x03, set[0]);
            await server.SendAsync(FakeServer.Error(1193, "HY000", "Unknown system variable 'x'"));

            Assert.Equal(new byte[] { 0x01 }, await server.ReadCommandAsync()); // COM_QUIT on dispose
        });

        var connection = await ReplicationConnection.OpenAsync(Options(server));
        Assert.False(connection.IsTls);
        Assert.Equal(42u, connection.ConnectionId);
        Assert.True(connection.ServerVersion.IsMariaDb);
        var result = await connection.QueryAsync("SELECT @master_binlog_checksum");
        Assert.Equal(["@master_binlog_checksum"], result.Columns);
        Assert.Equal("CRC32", result.Get(0, "@master_binlog_checksum"));
        var error = await Assert.ThrowsAsync<ServerErrorException>(() => connection.ExecuteAsync("SET @@x = 1"));
        Assert.Equal(1193, error.ServerErrorCode);
        await connection.DisposeAsync();
        await script.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Access_denied_is_a_server_error_with_code_and_sqlstate()
    {
        await using var server = new FakeServer();
        var script = Task.Run(async () =>
        {
            await server.AcceptAsync();
            await server.SendGreetingAsync(MariaDbVersion, "mysql_native_password");
            await server.ReadAsync();
            await server.SendAsync(FakeServer.Error(1045, "28000", "Access denied for user 'cdc'@'127.0.0.1' (using password: YES)"));
        });

        var error = await Assert.ThrowsAsync<ServerErrorException>(() => ReplicationConnection.OpenAsync(Options(server)));
        Assert.Equal(1045, error.ServerErrorCode);
        Assert.Equal("28000", error.SqlState);
        Assert.Contains("authenticating as 'cdc'", error.Message, StringComparison.Ordinal);
        await script.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Tls_required_but_not_offered_is_refused_before_sending_credentials()
    {
        await using var server = new FakeServer();
        var script = Task.Run(async () =>
        {
            await server.AcceptAsync();
            await server.SendGreetingAsync(MariaDbVersion, "mysql_native_password");
        });

        var error = await Assert.ThrowsAsync<ReplicationSetupException>(() => ReplicationConnection.OpenAsync(Options(server, o => o.SslMode = SslMode.Required)));
        Assert.Equal(ReplicationErrorCode.Tls, error.ErrorCode);
        await script.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Self_signed_server_certificate_is_rejected_by_default()
    {
        using var certificates = TestCertificates.Create(["localhost"], [IPAddress.Loopback]);
        await using var server = new FakeServer();
        var script = Task.Run(async () =>
        {
            await server.AcceptAsync();
            await server.SendGreetingAsync(MariaDbVersion, "mysql_native_password", FakeServer.DefaultCapabilities | FakeServer.Ssl);
            await server.ReadAsync();
            await ExpectClientToAbortTlsAsync(server, certificates);
        });

        // Preferred (the default) uses TLS because the server offers it, and validates the certificate.
        var error = await Assert.ThrowsAsync<ReplicationSetupException>(() => ReplicationConnection.OpenAsync(Options(server, o => o.SslMode = SslMode.Preferred)));
        Assert.Equal(ReplicationErrorCode.Tls, error.ErrorCode);
        Assert.Contains("RemoteCertificateChainErrors", error.Message, StringComparison.Ordinal);
        Assert.Contains("SslCaFile", error.Message, StringComparison.Ordinal);
        await script.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Theory]
    [InlineData("Required")]
    [InlineData("VerifyCA")]
    [InlineData("VerifyFull")]
    [InlineData("Preferred")]
    public async Task Certificate_signed_by_the_configured_ca_is_accepted(string modeName)
    {
        var mode = Enum.Parse<SslMode>(modeName);
        using var certificates = TestCertificates.Create(["localhost"], [IPAddress.Loopback]);
        await using var server = new FakeServer();
        var script = RunTlsServerAsync(server, certificates);

        await using var connection = await ReplicationConnection.OpenAsync(Options(server, o =>
        {
            o.SslMode = mode;
            o.SslCaFile = certificates.CaPemPath;
        }));
        Assert.True(connection.IsTls);
        await script.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Host_name_mismatch_fails_verify_full_but_passes_verify_ca()
    {
        using var certificates = TestCertificates.Create(["db.example.test"], []);
        await using (var server = new FakeServer())
        {
            var script = Task.Run(async () =>
            {
                await server.AcceptAsync();
                await server.SendGreetingAsync(MariaDbVersion, "mysql_native_password", FakeServer.DefaultCapabilities | FakeServer.Ssl);
                await server.ReadAsync();
                await ExpectClientToAbortTlsAsync(server, certificates);
            });
            var error = await Assert.ThrowsAsync<ReplicationSetupException>(() => ReplicationConnection.OpenAsync(Options(server, o =>
            {
                o.SslMode = SslMode.VerifyFull;
                o.SslCaFile = certificates.CaPemPath;
            })));
            Assert.Contains("RemoteCertificateNameMismatch", error.Message, StringComparison.Ordinal);
            await script.WaitAsync(TimeSpan.FromSeconds(10));
        }

        await using (var server = new FakeServer())
        {
            var script = RunTlsServerAsync(server, certificates);
            await using var connection = await ReplicationConnection.OpenAsync(Options(server, o =>
            {
                o.SslMode = SslMode.VerifyCA;
                o.SslCaFile = certificates.CaPemPath;
            }));
            Assert.True(connection.IsTls);
            await script.WaitAsync(TimeSpan.FromSeconds(10));
        }
    }

    [Fact]
    public async Task Disabled_validation_accepts_an_untrusted_certificate()
    {
        using var certificates = TestCertificates.Create(["elsewhere.test"], []);
        await using var server = new FakeServer();
        var script = RunTlsServerAsync(server, certificates);
        await using var connection = await ReplicationConnection.OpenAsync(Options(server, o =>
        {
            o.SslMode = SslMode.Required;
            o.DisableCertificateValidation = true;
        }));
        Assert.True(connection.IsTls);
        await script.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Caching_sha2_fast_path()
    {
        await using var server = new FakeServer();
        var script = Task.Run(async () =>
        {
            await server.AcceptAsync();
            await server.SendGreetingAsync(MySqlVersion, "caching_sha2_password");
            var (_, _, auth, plugin) = FakeServer.ParseResponse(await server.ReadAsync());
            Assert.Equal("caching_sha2_password", plugin);
            Assert.Equal(Sha2Reference(server.Nonce, Password), auth);
            await server.SendAsync([0x01, 0x03]);
            await server.SendAsync(FakeServer.Ok);
        });

        await using var connection = await ReplicationConnection.OpenAsync(Options(server));
        Assert.Equal("caching_sha2_password", connection.AuthenticationPlugin);
        Assert.False(connection.UsedFullAuthentication);
        Assert.False(connection.ServerVersion.IsMariaDb);
        await script.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Caching_sha2_full_auth_over_tls_sends_the_password_in_the_tunnel()
    {
        using var certificates = TestCertificates.Create(["localhost"], [IPAddress.Loopback]);
        await using var server = new FakeServer();
        var script = Task.Run(async () =>
        {
            await server.AcceptAsync();
            await server.SendGreetingAsync(MySqlVersion, "caching_sha2_password", FakeServer.DefaultCapabilities | FakeServer.Ssl);
            await server.ReadAsync();
            await server.UpgradeToTlsAsync(certificates.Server);
            await server.ReadAsync();
            await server.SendAsync([0x01, 0x04]);
            Assert.Equal(Encoding.UTF8.GetBytes(Password + "\0"), await server.ReadAsync());
            await server.SendAsync(FakeServer.Ok);
        });

        await using var connection = await ReplicationConnection.OpenAsync(Options(server, o =>
        {
            o.SslMode = SslMode.VerifyFull;
            o.SslCaFile = certificates.CaPemPath;
        }));
        Assert.True(connection.UsedFullAuthentication);
        Assert.True(connection.IsTls);
        await script.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Caching_sha2_full_auth_over_plain_tcp_refuses_to_fetch_the_key_by_default()
    {
        await using var server = new FakeServer();
        var script = Task.Run(async () =>
        {
            await server.AcceptAsync();
            await server.SendGreetingAsync(MySqlVersion, "caching_sha2_password");
            await server.ReadAsync();
            await server.SendAsync([0x01, 0x04]);

            // The client must hang up instead of asking for the key (0x02) or sending anything else.
            await Assert.ThrowsAnyAsync<Exception>(server.ReadAsync);
        });

        var error = await Assert.ThrowsAsync<ReplicationSetupException>(() => ReplicationConnection.OpenAsync(Options(server)));
        Assert.Equal(ReplicationErrorCode.Authentication, error.ErrorCode);
        Assert.Contains("AllowPublicKeyRetrieval", error.Message, StringComparison.Ordinal);
        await server.CloseAsync();
        await script.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Caching_sha2_full_auth_with_public_key_retrieval_uses_rsa_oaep()
    {
        using var rsa = RSA.Create(2048);
        await using var server = new FakeServer();
        var script = Task.Run(async () =>
        {
            await server.AcceptAsync();
            await server.SendGreetingAsync(MySqlVersion, "caching_sha2_password");
            await server.ReadAsync();
            await server.SendAsync([0x01, 0x04]);
            Assert.Equal(new byte[] { 0x02 }, await server.ReadAsync());
            await server.SendAsync([0x01, .. Encoding.ASCII.GetBytes(rsa.ExportSubjectPublicKeyInfoPem())]);
            AssertRsaPassword(rsa, server.Nonce, await server.ReadAsync());
            await server.SendAsync(FakeServer.Ok);
        });

        await using var connection = await ReplicationConnection.OpenAsync(Options(server, o => o.AllowPublicKeyRetrieval = true));
        Assert.True(connection.UsedFullAuthentication);
        await script.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Caching_sha2_full_auth_with_a_pinned_key_never_asks_the_server_for_it()
    {
        using var rsa = RSA.Create(2048);
        var keyFile = Path.GetTempFileName();
        await File.WriteAllTextAsync(keyFile, rsa.ExportSubjectPublicKeyInfoPem());
        try
        {
            await using var server = new FakeServer();
            var script = Task.Run(async () =>
            {
                await server.AcceptAsync();
                await server.SendGreetingAsync(MySqlVersion, "caching_sha2_password");
                await server.ReadAsync();
                await server.SendAsync([0x01, 0x04]);
                AssertRsaPassword(rsa, server.Nonce, await server.ReadAsync());
                await server.SendAsync(FakeServer.Ok);
            });

            await using var connection = await ReplicationConnection.OpenAsync(Options(server, o => o.ServerRsaPublicKeyFile = keyFile));
            Assert.True(connection.UsedFullAuthentication);
            await script.WaitAsync(TimeSpan.FromSeconds(10));
        }
        finally
        {
            File.Delete(keyFile);
        }
    }

    [Fact]
    public async Task Auth_switch_request_answers_with_the_new_plugin_and_nonce()
    {
        var newNonce = Enumerable.Range(100, 20).Select(i => (byte)i).ToArray();
        await using var server = new FakeServer();
        var script = Task.Run(async () =>
        {
            await server.AcceptAsync();
            await server.SendGreetingAsync(MySqlVersion, "caching_sha2_password");
            await server.ReadAsync();
            await server.SendAsync([0xFE, .. "mysql_native_password"u8, 0, .. newNonce, 0]);
            Assert.Equal(NativeReference(newNonce, Password), await server.ReadAsync());
            await server.SendAsync(FakeServer.Ok);
        });

        await using var connection = await ReplicationConnection.OpenAsync(Options(server));
        Assert.Equal("mysql_native_password", connection.AuthenticationPlugin);
        await script.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Clear_password_switch_over_plain_tcp_is_refused()
    {
        await using var server = new FakeServer();
        var script = Task.Run(async () =>
        {
            await server.AcceptAsync();
            await server.SendGreetingAsync(MariaDbVersion, "mysql_native_password");
            await server.ReadAsync();
            await server.SendAsync([0xFE, .. "mysql_clear_password"u8, 0]);
        });

        var error = await Assert.ThrowsAsync<ReplicationSetupException>(() => ReplicationConnection.OpenAsync(Options(server)));
        Assert.Equal(ReplicationErrorCode.Authentication, error.ErrorCode);
        await script.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Silent_server_trips_the_connect_timeout()
    {
        await using var server = new FakeServer();
        var script = server.AcceptAsync();
        var error = await Assert.ThrowsAsync<ReplicationTimeoutException>(() =>
            ReplicationConnection.OpenAsync(Options(server, o => o.ConnectTimeout = TimeSpan.FromMilliseconds(300))));
        Assert.True(error.IsTransient);
        await script;
    }

    [Fact]
    public async Task Refused_connection_is_a_lost_connection()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var options = new BinlogClientOptions { Host = "127.0.0.1", Port = port, UserName = "cdc", ServerId = 1, SslMode = SslMode.None };
        await Assert.ThrowsAsync<ReplicationConnectionLostException>(() => ReplicationConnection.OpenAsync(options));
    }

    /// <summary>
    /// The client rejects the certificate: with TLS 1.3 the server-side handshake may still complete, but
    /// the client must hang up without sending its credentials.
    /// </summary>
    private static async Task ExpectClientToAbortTlsAsync(FakeServer server, TestCertificates certificates)
    {
        try
        {
            await server.UpgradeToTlsAsync(certificates.Server);
        }
        catch (Exception ex) when (ex is IOException or System.Security.Authentication.AuthenticationException)
        {
            return;
        }

        await Assert.ThrowsAnyAsync<Exception>(server.ReadAsync);
    }

    private static Task RunTlsServerAsync(FakeServer server, TestCertificates certificates) => Task.Run(async () =>
    {
        await server.AcceptAsync();
        await server.SendGreetingAsync(MariaDbVersion, "mysql_native_password", FakeServer.DefaultCapabilities | FakeServer.Ssl);
        var sslRequest = await server.ReadAsync();
        Assert.Equal(32, sslRequest.Length);
        Assert.NotEqual(0u, BitConverter.ToUInt32(sslRequest) & FakeServer.Ssl);
        await server.UpgradeToTlsAsync(certificates.Server);
        var (capabilities, user, auth, _) = FakeServer.ParseResponse(await server.ReadAsync()); // sequence id 2
        Assert.NotEqual(0u, capabilities & FakeServer.Ssl);
        Assert.Equal("cdc", user);
        Assert.Equal(NativeReference(server.Nonce, Password), auth);
        await server.SendAsync(FakeServer.Ok);
    });

    private static BinlogClientOptions Options(FakeServer server, Action<BinlogClientOptions>? configure = null)
    {
        var options = new BinlogClientOptions
        {
            Host = "127.0.0.1",
            Port = server.Port,
            UserName = "cdc",
            Password = Password,
            ServerId = 9001,
            SslMode = SslMode.None,
            ConnectTimeout = TimeSpan.FromSeconds(10),
        };
        configure?.Invoke(options);
        return options;
    }

    private static void AssertRsaPassword(RSA rsa, byte[] nonce, byte[] encrypted)
    {
        var plain = rsa.Decrypt(encrypted, RSAEncryptionPadding.OaepSHA1);
        var unmasked = plain.Select((b, i) => (byte)(b ^ nonce[i % nonce.Length])).ToArray();
        Assert.Equal(Encoding.UTF8.GetBytes(Password + "\0"), unmasked);
    }

#pragma warning disable CA5350 // the protocol is SHA-1 based
    private static byte[] NativeReference(byte[] nonce, string password)
    {
        var stage1 = SHA1.HashData(Encoding.UTF8.GetBytes(password));
        var stage2 = SHA1.HashData(stage1);
        var mix = SHA1.HashData([.. nonce, .. stage2]);
        return stage1.Zip(mix, (a, b) => (byte)(a ^ b)).ToArray();
    }
#pragma warning restore CA5350

    private static byte[] Sha2Reference(byte[] nonce, string password)
    {
        var hash1 = SHA256.HashData(Encoding.UTF8.GetBytes(password));
        var hash3 = SHA256.HashData([.. SHA256.HashData(hash1), .. nonce]);
        return hash1.Zip(hash3, (a, b) => (byte)(a ^ b)).ToArray();
    }
}
