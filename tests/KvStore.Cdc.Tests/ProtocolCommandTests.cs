using KvStore.Cdc.Protocol;
using KvStore.Cdc.Tests.Protocol;

namespace KvStore.Cdc.Tests;

public sealed class ProtocolCommandTests
{
    private static readonly ServerVersion MariaDb = ServerVersion.Parse("5.5.5-10.11.19-MariaDB-0+deb12u1-log");
    private static readonly ServerVersion MySql = ServerVersion.Parse("8.0.36");

    public static TheoryData<string> CaptureNames => [.. StreamCapture.Names];

    [Theory]
    [MemberData(nameof(CaptureNames))]
    public void Register_and_dump_commands_are_byte_identical_to_the_capture(string name)
    {
        var capture = StreamCapture.Load(name);
        Assert.Equal(
            Convert.ToHexString(capture.Hex("com_register_slave_payload_hex")),
            Convert.ToHexString(ReplicationCommands.RegisterReplica(capture.DumpServerId)));

        var options = new BinlogClientOptions
        {
            UserName = "cdc",
            ServerId = capture.DumpServerId,
            NonBlocking = (capture.DumpFlags & 1) != 0,
            SendAnnotateRows = (capture.DumpFlags & 2) != 0,
        };
        var start = name == "dump-from-gtid"
            ? BinlogStartPosition.FromMariaDbGtid("0-101-5")
            : BinlogStartPosition.FromFile(capture.DumpFile, capture.DumpPosition);
        Assert.Equal(
            Convert.ToHexString(capture.Hex("com_binlog_dump_payload_hex")),
            Convert.ToHexString(BinlogClient.DumpCommand(MariaDb, start, options)));
    }

    [Fact]
    public void Register_ok_reply_of_the_capture_is_an_ok_packet()
    {
        var capture = StreamCapture.Load("dump-from-position");
        ServerPackets.ExpectOk(capture.Hex("register_ok_payload_hex"), "registering");
    }

    [Theory]
    [MemberData(nameof(CaptureNames))]
    public void Mariadb_session_statements_cover_the_captured_setup(string name)
    {
        var capture = StreamCapture.Load(name);
        if (name == "dump-no-slave-capability")
        {
            return; // a deliberately broken setup
        }

        var heartbeat = capture.Setup.Any(s => s.Contains("heartbeat", StringComparison.Ordinal));
        var options = new BinlogClientOptions
        {
            UserName = "cdc",
            ServerId = 1,
            HeartbeatPeriod = heartbeat ? TimeSpan.FromSeconds(1) : TimeSpan.Zero,
            GtidStrictMode = true,
        };
        var start = name == "dump-from-gtid" ? BinlogStartPosition.FromMariaDbGtid("0-101-5") : BinlogStartPosition.FromFile("f.000001");
        var statements = BinlogClient.SessionStatements(MariaDb, start, options);
        foreach (var expected in capture.Setup.Where(s => !s.Contains("binlog_checksum", StringComparison.Ordinal)))
        {
            Assert.Contains(expected, statements);
        }

        Assert.DoesNotContain(statements, s => s.Contains("uuid", StringComparison.Ordinal));
    }

    [Fact]
    public void Mysql_session_sets_source_and_master_variables_and_the_replica_uuid()
    {
        var options = new BinlogClientOptions { UserName = "u", ServerId = 77, HeartbeatPeriod = TimeSpan.FromMilliseconds(1500) };
        var statements = BinlogClient.SessionStatements(MySql, BinlogStartPosition.FromFile("binlog.000001"), options);
        Assert.Equal(
            [
                "SET @master_heartbeat_period = 1500000000",
                "SET @source_heartbeat_period = 1500000000",
                $"SET @slave_uuid = '{options.EffectiveReplicaUuid}', @replica_uuid = '{options.EffectiveReplicaUuid}'",
            ],
            statements);
        Assert.EndsWith("00000000004d", options.EffectiveReplicaUuid.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Mysql_gtid_dump_encodes_the_set_with_exclusive_interval_ends()
    {
        var set = MySqlGtidSet.Parse("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7, 00000000-0000-0000-0000-000000000001:10");
        var options = new BinlogClientOptions { UserName = "u", ServerId = 0x2a23 };
        var payload = BinlogClient.DumpCommand(MySql, BinlogStartPosition.FromMySqlGtidSet(set), options);

        var expected = Convert.FromHexString(
            "1e" + "0000" + "232a0000" + "00000000" + "0400000000000000" + "68000000" +
            "0200000000000000" +
            "00000000000000000000000000000001" + "0100000000000000" + "0a00000000000000" + "0b00000000000000" +
            "3e11fa4771ca11e19e33c80aa9429562" + "0200000000000000" +
            "0100000000000000" + "0600000000000000" + "0700000000000000" + "0800000000000000");
        Assert.Equal(Convert.ToHexString(expected), Convert.ToHexString(payload));
        Assert.Equal(set.ToString(), MySqlGtidSet.Decode(set.Encode()).ToString());
    }

    [Fact]
    public void Mysql_gtid_set_merges_ranges_and_formats_canonically()
    {
        var set = MySqlGtidSet.Parse("3E11FA47-71CA-11E1-9E33-C80AA9429562:3-4:1,\n3e11fa47-71ca-11e1-9e33-c80aa9429562:9");
        var source = Guid.Parse("3e11fa47-71ca-11e1-9e33-c80aa9429562");
        set.Add(source, 2);
        set.Add(source, 5);
        set.Add(source, 8);
        Assert.Equal("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:8-9", set.ToString());
        Assert.True(set.Contains(source, 4));
        Assert.False(set.Contains(source, 6));
        Assert.Throws<FormatException>(() => MySqlGtidSet.Parse("3e11fa47-71ca-11e1-9e33-c80aa9429562:tag:1-5"));
        Assert.True(MySqlGtidSet.Parse("").IsEmpty);
    }

    [Fact]
    public void Mariadb_gtid_position_parses_and_formats_per_domain()
    {
        var position = MariaDbGtidPosition.Parse(" 1-2-30 , 0-101-5");
        Assert.Equal("0-101-5,1-2-30", position.ToString());
        Assert.Equal("0-7-6,1-2-30", position.With(new MariaDbGtid(0, 7, 6)).ToString());
        Assert.True(MariaDbGtidPosition.Parse("").IsEmpty);
        Assert.Throws<FormatException>(() => MariaDbGtidPosition.Parse("0-1-2,0-1-3"));
        Assert.Throws<FormatException>(() => MariaDbGtidPosition.Parse("0-1"));
        Assert.Equal(MariaDbGtidPosition.Parse("0-1-2"), MariaDbGtidPosition.Parse("0-1-2"));
    }

    [Fact]
    public void File_position_beyond_4_GiB_cannot_use_com_binlog_dump()
    {
        var options = new BinlogClientOptions { UserName = "u", ServerId = 1 };
        Assert.Throws<ArgumentException>(() => BinlogClient.DumpCommand(MySql, BinlogStartPosition.FromFile("binlog.000009", 5L << 30), options));
    }

    [Fact]
    public void Mysql_heartbeat_flag_is_never_sent_as_the_mariadb_annotate_flag()
    {
        var options = new BinlogClientOptions { UserName = "u", ServerId = 1, SendAnnotateRows = true };
        var payload = BinlogClient.DumpCommand(MySql, BinlogStartPosition.FromFile("binlog.000001"), options);
        Assert.Equal(0, payload[5] & 0x02);
    }

    [Theory]
    [InlineData("CRC32", 1)]
    [InlineData("crc32", 1)]
    [InlineData("NONE", 0)]
    [InlineData(null, 0)]
    public void Negotiated_checksum_values_are_understood(string? value, byte expected) =>
        Assert.Equal((BinlogChecksumAlgorithm)expected, BinlogClient.ParseChecksum(value));

    [Fact]
    public void Options_validation_rejects_unsafe_or_useless_settings()
    {
        Assert.Throws<ArgumentException>(() => new BinlogClientOptions { UserName = "u" }.Validate()); // ServerId 0
        Assert.Throws<ArgumentException>(() => new BinlogClientOptions { UserName = "u", ServerId = 1, ReadTimeout = TimeSpan.FromSeconds(1) }.Validate());
        Assert.Throws<ArgumentException>(() => new BinlogClientOptions { UserName = "u", ServerId = 1, SslMode = SslMode.None, SslCaFile = "/tmp/ca.pem" }.Validate());
        Assert.Equal(TimeSpan.FromSeconds(10), new BinlogClientOptions().EffectiveReadTimeout);
        Assert.Equal(Timeout.InfiniteTimeSpan, new BinlogClientOptions { HeartbeatPeriod = TimeSpan.Zero }.EffectiveReadTimeout);
    }
}
