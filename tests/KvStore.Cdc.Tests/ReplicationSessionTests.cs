using System.IO.Pipelines;
using System.Text;
using KvStore.Cdc.Events;
using KvStore.Cdc.Protocol;
using KvStore.Cdc.Tests.Protocol;

namespace KvStore.Cdc.Tests;

/// <summary>Whole replication sessions against a scripted server (the MySQL path cannot run live here).</summary>
public sealed class ReplicationSessionTests
{
    private static readonly Guid SourceA = Guid.Parse("3e11fa47-71ca-11e1-9e33-c80aa9429562");

    [Fact]
    public async Task Mysql_gtid_session_sets_up_dumps_and_tracks_the_executed_set()
    {
        await using var server = new FakeServer();
        var commands = new List<string>();
        var script = Task.Run(async () =>
        {
            await server.AcceptAsync();
            await server.SendGreetingAsync("8.0.36", "caching_sha2_password");
            await server.ReadAsync();
            await server.SendAsync([0x01, 0x03]);
            await server.SendAsync(FakeServer.Ok);

            while (true)
            {
                var command = await server.ReadCommandAsync();
                if (command[0] == 0x03)
                {
                    var sql = Encoding.UTF8.GetString(command.AsSpan(1));
                    commands.Add(sql);
                    if (sql.StartsWith("SELECT", StringComparison.Ordinal))
                    {
                        await server.SendResultSetAsync("@master_binlog_checksum", "CRC32");
                    }
                    else
                    {
                        await server.SendAsync(FakeServer.Ok);
                    }
                }
                else if (command[0] == 0x15)
                {
                    commands.Add("COM_REGISTER_SLAVE " + Convert.ToHexString(command));
                    await server.SendAsync(FakeServer.Ok);
                }
                else
                {
                    Assert.Equal(0x1E, command[0]);
                    commands.Add("COM_BINLOG_DUMP_GTID " + Convert.ToHexString(command));
                    break;
                }
            }

            await server.SendManyAsync(MySqlStream().Select(EventBytes.Packet));
            await server.CloseAsync();
        });

        var client = new BinlogClient(new BinlogClientOptions
        {
            Host = "127.0.0.1",
            Port = server.Port,
            UserName = "repl",
            Password = "pw",
            ServerId = 0x2a23,
            SslMode = SslMode.None,
            HeartbeatPeriod = TimeSpan.FromSeconds(1),
        });
        await using var stream = await client.StartAsync(BinlogStartPosition.FromMySqlGtidSet($"{SourceA}:1-5"));
        var checkpoints = new List<ReplicationCheckpoint>();
        var types = new List<BinlogEventType>();
        await Assert.ThrowsAsync<ReplicationConnectionLostException>(async () =>
        {
            await foreach (var binlogEvent in stream.ReadAllAsync())
            {
                types.Add(binlogEvent.Header.Type);
                checkpoints.Add(stream.Checkpoint);
            }
        });
        await script.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(
            [
                "SET @master_binlog_checksum = @@global.binlog_checksum",
                "SET @source_binlog_checksum = @@global.binlog_checksum",
                "SELECT @master_binlog_checksum",
                "SET @master_heartbeat_period = 1000000000",
                "SET @source_heartbeat_period = 1000000000",
                "SET @slave_uuid = '6b767374-6f72-4563-8463-000000002a23', @replica_uuid = '6b767374-6f72-4563-8463-000000002a23'",
                "COM_REGISTER_SLAVE 15232A000000000000000000000000000000",
                "COM_BINLOG_DUMP_GTID 1E0000232A00000000000004000000000000003000000001000000000000003E11FA4771CA11E19E33C80AA942956201000000000000000100000000000000" + "0600000000000000",
            ],
            commands);

        Assert.Equal(
            [
                BinlogEventType.Rotate, BinlogEventType.FormatDescription, BinlogEventType.MySqlPreviousGtids,
                BinlogEventType.MySqlGtid, BinlogEventType.Query, BinlogEventType.TableMap, BinlogEventType.WriteRowsV2,
                BinlogEventType.Xid, BinlogEventType.Heartbeat, BinlogEventType.MySqlGtid, BinlogEventType.Query,
            ],
            types);

        // Before the first transaction ends, a GTID start has no reliable file offset.
        Assert.Null(checkpoints[2].Position);
        Assert.Equal($"{SourceA}:1-5", checkpoints[2].MySqlGtid!.ToString());
        Assert.Equal($"{SourceA}:1-5", checkpoints[6].MySqlGtid!.ToString()); // inside the transaction
        Assert.Equal(new BinlogPosition("binlog.000001", 800), checkpoints[7].Position); // XID
        Assert.Equal($"{SourceA}:1-6", checkpoints[7].MySqlGtid!.ToString());
        Assert.Equal(new BinlogPosition("binlog.000001", 800), checkpoints[8].Position); // heartbeat moves nothing
        Assert.Equal($"{SourceA}:1-7", checkpoints[10].MySqlGtid!.ToString()); // DDL without BEGIN
        Assert.Equal(new BinlogPosition("binlog.000001", 950), checkpoints[10].Position);
        Assert.Equal(BinlogStartKind.MySqlGtid, checkpoints[10].ToStartPosition(preferGtid: true)!.Kind);
        Assert.Equal(BinlogStartKind.FilePosition, checkpoints[10].ToStartPosition()!.Kind);
    }

    [Fact]
    public async Task Huge_row_event_over_16_MiB_arrives_whole_through_continuation_packets()
    {
        var rows = new byte[(20 * 1024 * 1024) + 17];
        new Random(7).NextBytes(rows);
        var events = new[]
        {
            EventBytes.Rotate("mariadb-bin.000009", 4, 0, crc: true, fake: true),
            EventBytes.FormatDescription("10.11.19-MariaDB-log", 256, crc32: true),
            EventBytes.MariaDbGtid(298, 0, 9, 0x0c, crc: true),
            EventBytes.Event(23, (uint)(298 + 19 + rows.Length + 4), rows, crc: true),
            EventBytes.Xid((uint)(298 + 19 + rows.Length + 4 + 31), 1, crc: true),
        };
        var bytes = PacketBytes.FrameAll(events.Select(EventBytes.Packet), firstSequenceId: 1);
        await using var stream = BinlogEventStream.FromCapture(
            PipeReader.Create(new MemoryStream(bytes)),
            BinlogStartPosition.FromFile("mariadb-bin.000009"),
            BinlogChecksumAlgorithm.Crc32,
            knownMariaDbGtid: MariaDbGtidPosition.Parse("0-1-8"));

        for (var i = 0; i < 3; i++)
        {
            Assert.True(await stream.MoveNextAsync());
        }

        Assert.True(await stream.MoveNextAsync());
        Assert.Equal(BinlogEventType.WriteRowsV1, stream.Current.Header.Type);
        Assert.True(stream.Current.Body.Span.SequenceEqual(rows));
        Assert.True(stream.InTransaction);
        Assert.True(await stream.MoveNextAsync());
        Assert.Equal("0-1-9", stream.Checkpoint.MariaDbGtid!.ToString());
        Assert.Equal(298 + 19 + rows.Length + 4 + 31, stream.Position.Position);
    }

    [Fact]
    public async Task Mariadb_statements_inside_a_non_standalone_gtid_group_wait_for_commit()
    {
        var events = new[]
        {
            EventBytes.Rotate("m.000001", 4, 0, crc: false, fake: true),
            EventBytes.FormatDescription("10.11.19-MariaDB-log", 256, crc32: false),
            EventBytes.MariaDbGtid(300, 2, 50, 0x08, crc: false, serverId: 7),
            EventBytes.Query(400, "INSERT INTO myisam_t VALUES (1)", crc: false, database: "db"),
            EventBytes.Query(450, "COMMIT", crc: false, database: "db"),
            EventBytes.MariaDbGtid(500, 2, 51, 0x29, crc: false, serverId: 7),
            EventBytes.Query(600, "CREATE TABLE t (id INT)", crc: false, database: "db"),
            EventBytes.Heartbeat("m.000001", 600, crc: false),
        };
        var bytes = PacketBytes.FrameAll(events.Select(EventBytes.Packet), firstSequenceId: 1);
        await using var stream = BinlogEventStream.FromCapture(
            PipeReader.Create(new MemoryStream(bytes)), BinlogStartPosition.FromFile("m.000001"), BinlogChecksumAlgorithm.None,
            knownMariaDbGtid: MariaDbGtidPosition.Parse("2-7-49,0-1-3"));

        var checkpoints = new List<string>();
        try
        {
            while (await stream.MoveNextAsync())
            {
                checkpoints.Add($"{stream.Checkpoint.Position}|{stream.Checkpoint.MariaDbGtid}");
            }
        }
        catch (ReplicationConnectionLostException)
        {
        }

        Assert.Equal(
            [
                "m.000001:4|0-1-3,2-7-49",
                "m.000001:256|0-1-3,2-7-49",
                "m.000001:256|0-1-3,2-7-49", // GTID: transaction open
                "m.000001:256|0-1-3,2-7-49", // statement inside it
                "m.000001:450|0-1-3,2-7-50", // COMMIT
                "m.000001:450|0-1-3,2-7-50", // standalone GTID (DDL)
                "m.000001:600|0-1-3,2-7-51", // the DDL ends it
                "m.000001:600|0-1-3,2-7-51", // heartbeat
            ],
            checkpoints);
    }

    [Fact]
    public async Task Fde_of_the_active_file_with_the_in_use_flag_passes_the_crc_check()
    {
        var fde = EventBytes.FormatDescription("8.0.36", 126, crc32: true);
        fde[17] |= 0x01; // LOG_EVENT_BINLOG_IN_USE_F set in place, CRC left as computed without it
        var corrupt = (byte[])fde.Clone();
        corrupt[30] ^= 0x55;

        foreach (var (bytes, ok) in new[] { (fde, true), (corrupt, false) })
        {
            var framed = PacketBytes.FrameAll([EventBytes.Packet(EventBytes.Rotate("binlog.000002", 4, 0, crc: true, fake: true)), EventBytes.Packet(bytes)], firstSequenceId: 1);
            await using var stream = BinlogEventStream.FromCapture(PipeReader.Create(new MemoryStream(framed)), BinlogStartPosition.FromFile("binlog.000002"), BinlogChecksumAlgorithm.Crc32);
            Assert.True(await stream.MoveNextAsync());
            if (ok)
            {
                Assert.True(await stream.MoveNextAsync());
                Assert.Equal(BinlogChecksumAlgorithm.Crc32, stream.ChecksumAlgorithm);
            }
            else
            {
                var error = await Assert.ThrowsAsync<ReplicationProtocolException>(async () => await stream.MoveNextAsync());
                Assert.Equal(ReplicationErrorCode.ChecksumMismatch, error.ErrorCode);
            }
        }
    }

    private static IEnumerable<byte[]> MySqlStream()
    {
        var previous = MySqlGtidSet.Parse($"{SourceA}:1-3").Encode();
        yield return EventBytes.Rotate("binlog.000001", 4, 0, crc: true, fake: true);
        yield return EventBytes.FormatDescription("8.0.36", 126, crc32: true);
        yield return EventBytes.Event(35, (uint)(157 + previous.Length), previous, crc: true);
        yield return EventBytes.MySqlGtid(600, SourceA, 6, crc: true);
        yield return EventBytes.Query(680, "BEGIN", crc: true, database: "db");
        yield return EventBytes.Event(19, 740, new byte[30], crc: true);
        yield return EventBytes.Event(30, 769, new byte[20], crc: true);
        yield return EventBytes.Xid(800, 99, crc: true);
        yield return EventBytes.Heartbeat("binlog.000001", 800, crc: true);
        yield return EventBytes.MySqlGtid(880, SourceA, 7, crc: true);
        yield return EventBytes.Query(950, "CREATE TABLE t (id INT)", crc: true, database: "db");
    }
}
