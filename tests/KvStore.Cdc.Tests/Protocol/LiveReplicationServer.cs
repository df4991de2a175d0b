using System.Globalization;
using System.Net;
using KvStore.Cdc.Protocol;
using KvStore.TestInfrastructure;

namespace KvStore.Cdc.Tests.Protocol;

/// <summary>
/// A private MariaDB for the replication-client live tests (they purge binlogs and kill connections, so
/// they do not share the assembly-wide server), with TLS configured from a throwaway CA.
/// </summary>
public sealed class LiveReplicationServer : IAsyncLifetime
{
    public const string User = "cdc_proto";
    public const string Password = "cdc-proto-pass";
    public const string Database = "cdcproto";

    private string _certificateDirectory = string.Empty;

    internal MariaDbServer Server { get; private set; } = null!;

    internal TestCertificates Certificates { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Certificates = TestCertificates.Create(["localhost"], [IPAddress.Loopback]);
        _certificateDirectory = Directory.CreateTempSubdirectory("kvstore-cdc-tls-").FullName;
        var (certificate, key) = Certificates.WriteServerPem(_certificateDirectory);
        Server = await MariaDbServer.StartAsync("cdcproto", config =>
        {
            config.AppendLine(CultureInfo.InvariantCulture, $"ssl_cert={certificate}");
            config.AppendLine(CultureInfo.InvariantCulture, $"ssl_key={key}");
        });
        await Server.ExecuteAsync(
            $"CREATE USER '{User}'@'127.0.0.1' IDENTIFIED BY '{Password}';" +
            $"GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO '{User}'@'127.0.0.1';" +
            $"CREATE DATABASE {Database};" +
            $"CREATE TABLE {Database}.t (id INT PRIMARY KEY AUTO_INCREMENT, v VARCHAR(100) NOT NULL)");
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        Certificates.Dispose();
        Directory.Delete(_certificateDirectory, recursive: true);
    }

    internal BinlogClientOptions Options(uint serverId, Action<BinlogClientOptions>? configure = null)
    {
        var options = new BinlogClientOptions
        {
            Host = "127.0.0.1",
            Port = Server.Port,
            UserName = User,
            Password = Password,
            ServerId = serverId,
            SslMode = SslMode.None,
            HeartbeatPeriod = TimeSpan.FromSeconds(1),
        };
        configure?.Invoke(options);
        return options;
    }

    internal Task InsertAsync(string value) =>
        Server.ExecuteAsync($"INSERT INTO t (v) VALUES ('{value}')", Database);
}
