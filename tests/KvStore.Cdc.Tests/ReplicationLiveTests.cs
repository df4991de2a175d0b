using KvStore.Cdc.Events;
using KvStore.Cdc.Protocol;
using KvStore.Cdc.Tests.Protocol;

namespace KvStore.Cdc.Tests;

/// <summary>The replication client against a real mariadbd (started by the shared test infrastructure).</summary>
public sealed class ReplicationLiveTests(LiveReplicationServer live) : IClassFixture<LiveReplicationServer>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Stream_from_now_sees_an_insert_with_positions_matching_the_server()
    {
        var client = new BinlogClient(live.Options(5001));
        await using var stream = await client.StartAsync(BinlogStartPosition.Now);
        Assert.True(stream.ServerVersion!.Value.IsMariaDb);

        await live.InsertAsync("from-now");
        var events = await ReadUntilAsync(stream, e => e.Header.Type == BinlogEventType.Xid);

        Assert.Equal(BinlogEventType.Rotate, events[0].Type);
        Assert.Contains(events, e => e.Type == BinlogEventType.MariaDbGtid);
        Assert.Contains(events, e => e.Type == BinlogEventType.TableMap);
        Assert.Contains(events, e => e.Type == BinlogEventType.WriteRowsV1);

        var status = await client.ReadServerStatusAsync();
        Assert.Equal(status.Position, stream.Position);
        Assert.Equal(status.Position, stream.Checkpoint.Position);
        Assert.Equal(status.MariaDbGtid, stream.Checkpoint.MariaDbGtid);
        Assert.Equal(await live.Server.ScalarAsync("SELECT @@gtid_binlog_pos") as string, stream.Checkpoint.MariaDbGtid!.ToString());
        Assert.False(stream.InTransaction);
    }

    [Fact]
    public async Task Tls_rejects_an_unknown_ca_by_default_and_accepts_it_when_configured()
    {
        var rejected = await Assert.ThrowsAsync<ReplicationSetupException>(() =>
            ReplicationConnection.OpenAsync(live.Options(5002, o => o.SslMode = SslMode.Required)));
        Assert.Equal(ReplicationErrorCode.Tls, rejected.ErrorCode);

        var client = new BinlogClient(live.Options(5002, o =>
        {
            o.SslMode = SslMode.VerifyFull;
            o.SslCaFile = live.Certificates.CaPemPath;
        }));
        await using var stream = await client.StartAsync(BinlogStartPosition.Now);
        await live.InsertAsync("over-tls");
        var events = await ReadUntilAsync(stream, e => e.Header.Type == BinlogEventType.Xid);
        Assert.Contains(events, e => e.Type == BinlogEventType.WriteRowsV1);

        await using var connection = await ReplicationConnection.OpenAsync(live.Options(5003, o =>
        {
            o.SslMode = SslMode.VerifyFull;
            o.SslCaFile = live.Certificates.CaPemPath;
        }));
        Assert.True(connection.IsTls);
        var cipher = await connection.QueryAsync("SHOW SESSION STATUS LIKE 'Ssl_version'");
        Assert.StartsWith("TLS", cipher.Get(0, "Value"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Gtid_start_resumes_with_the_transaction_after_the_given_gtid()
    {
        await live.InsertAsync("gtid-1");
        var afterFirst = MariaDbGtidPosition.Parse((string)(await live.Server.ScalarAsync("SELECT @@gtid_binlog_pos"))!);
        await live.InsertAsync("gtid-2");
        var afterSecond = (string)(await live.Server.ScalarAsync("SELECT @@gtid_binlog_pos"))!;

        var client = new BinlogClient(live.Options(5004, o => o.NonBlocking = true));
        await using var stream = await client.StartAsync(BinlogStartPosition.FromMariaDbGtid(afterFirst));
        var sequences = new List<ulong>();
        while (await stream.MoveNextAsync(Cancel()))
        {
            if (stream.Current.Header.Type == BinlogEventType.MariaDbGtid)
            {
                sequences.Add(BitConverter.ToUInt64(stream.Current.Body.Span));
            }
        }

        Assert.True(stream.IsCompleted);
        Assert.Equal([afterFirst.Gtids[0].SequenceNumber + 1], sequences);
        Assert.Equal(afterSecond, stream.Checkpoint.MariaDbGtid!.ToString());
        Assert.NotNull(stream.Checkpoint.Position);
    }

    [Fact]
    public async Task Dump_from_the_first_file_to_eof_ends_where_the_server_says()
    {
        var client = new BinlogClient(live.Options(5005, o => o.NonBlocking = true));
        var first = await FirstBinlogAsync();
        await using var stream = await client.StartAsync(BinlogStartPosition.FromFile(first));
        var count = 0;
        while (await stream.MoveNextAsync(Cancel()))
        {
            count++;
        }

        var status = await client.ReadServerStatusAsync();
        Assert.True(count > 3);
        Assert.Equal(status.Position, stream.Position);
        Assert.Equal(status.MariaDbGtid, stream.Checkpoint.MariaDbGtid);
    }

    [Fact]
    public async Task Heartbeats_keep_an_idle_connection_alive()
    {
        // 4.5 s of idling with a 2 s read timeout: only the heartbeats (every 200 ms) keep it alive. The
        // timeout is 10 heartbeats long, so a loaded CI machine's scheduling stalls do not end the test.
        var client = new BinlogClient(live.Options(5006, o =>
        {
            o.HeartbeatPeriod = TimeSpan.FromMilliseconds(200);
            o.ReadTimeout = TimeSpan.FromSeconds(2);
        }));
        await using var stream = await client.StartAsync(BinlogStartPosition.Now);

        var heartbeats = 0;
        var started = System.Diagnostics.Stopwatch.StartNew();
        while (started.Elapsed < TimeSpan.FromSeconds(4.5))
        {
            Assert.True(await stream.MoveNextAsync(Cancel()));
            if (stream.Current.IsHeartbeat)
            {
                heartbeats++;
                Assert.Equal(0u, stream.Current.Header.Timestamp);
            }
        }

        Assert.True(heartbeats >= 10, $"only {heartbeats} heartbeats in 4.5 s");
    }

    [Fact]
    public async Task Silent_connection_without_heartbeats_times_out()
    {
        var client = new BinlogClient(live.Options(5007, o =>
        {
            o.HeartbeatPeriod = TimeSpan.Zero;
            o.ReadTimeout = TimeSpan.FromMilliseconds(700);
        }));
        await using var stream = await client.StartAsync(BinlogStartPosition.Now);
        var error = await Assert.ThrowsAsync<ReplicationTimeoutException>(async () =>
        {
            while (await stream.MoveNextAsync(Cancel()))
            {
            }
        });
        Assert.True(error.IsTransient);
    }

    [Fact]
    public async Task Killing_the_dump_connection_server_side_surfaces_a_lost_connection()
    {
        var client = new BinlogClient(live.Options(5008));
        await using var stream = await client.StartAsync(BinlogStartPosition.Now);
        Assert.True(await stream.MoveNextAsync(Cancel())); // fake ROTATE
        Assert.True(await stream.MoveNextAsync(Cancel())); // FDE

        await live.Server.ExecuteAsync($"KILL {stream.ConnectionId}");
        var error = await Assert.ThrowsAnyAsync<ReplicationException>(async () =>
        {
            while (await stream.MoveNextAsync(Cancel()))
            {
            }
        });
        Assert.IsType<ReplicationConnectionLostException>(error);
        Assert.True(error.IsTransient, $"{error.GetType().Name}: {error.Message}");
        Assert.NotNull(stream.Checkpoint.ToStartPosition());
    }

    [Fact]
    public async Task Requesting_a_purged_file_is_a_binlog_not_available_error()
    {
        var first = await FirstBinlogAsync();
        await live.Server.ExecuteAsync("FLUSH BINARY LOGS");
        var current = (await new BinlogClient(live.Options(5009)).ReadServerStatusAsync()).Position.FileName;
        await live.Server.PurgeBinaryLogsToAsync(current);
        Assert.NotEqual(first, await FirstBinlogAsync());

        var client = new BinlogClient(live.Options(5009));
        await using var stream = await client.StartAsync(BinlogStartPosition.FromFile(first));
        var error = await Assert.ThrowsAsync<BinlogNotAvailableException>(async () => await stream.MoveNextAsync(Cancel()));
        Assert.False(error.IsTransient);
        Assert.Contains(first, error.RequestedStart, StringComparison.Ordinal);

        await using var missing = await client.StartAsync(BinlogStartPosition.FromFile("mariadb-bin.999999"));
        await Assert.ThrowsAsync<BinlogNotAvailableException>(async () => await missing.MoveNextAsync(Cancel()));
    }

    [Fact]
    public async Task Handed_out_event_bytes_parse_with_the_event_parser_before_the_next_read()
    {
        var client = new BinlogClient(live.Options(5011));
        await using var stream = await client.StartAsync(BinlogStartPosition.Now);

        // The contract with KvStore.Cdc.Events: full event bytes (CRC included), parsed before the next
        // MoveNextAsync, by a parser that starts from the negotiated checksum state.
        var parser = new BinlogEventParser(new BinlogParserOptions { InitialChecksum = (ChecksumAlgorithm)(byte)stream.NegotiatedChecksum });
        await live.InsertAsync("parsed-by-the-parser");
        string? inserted = null;
        while (await stream.MoveNextAsync(Cancel()))
        {
            var parsed = parser.Parse(stream.Current.Data);
            if (parsed is RowsEvent rows)
            {
                var value = rows.ToRowValues()[0].After![1];
                inserted = value switch
                {
                    string text => text,
                    byte[] bytes => System.Text.Encoding.UTF8.GetString(bytes),
                    _ => value?.ToString(),
                };
            }

            if (stream.Current.Header.Type == BinlogEventType.Xid)
            {
                break;
            }
        }

        Assert.Equal("parsed-by-the-parser", inserted);
    }

    [Fact]
    public async Task Wrong_password_is_access_denied()
    {
        var error = await Assert.ThrowsAsync<ServerErrorException>(() =>
            ReplicationConnection.OpenAsync(live.Options(5010, o => o.Password = "wrong")));
        Assert.Equal(1045, error.ServerErrorCode);
        Assert.Equal("28000", error.SqlState);
    }

    private static CancellationToken Cancel() => new CancellationTokenSource(Patience).Token;

    private static async Task<List<(BinlogEventType Type, BinlogPosition Position)>> ReadUntilAsync(BinlogEventStream stream, Func<BinlogRawEvent, bool> stop)
    {
        var events = new List<(BinlogEventType, BinlogPosition)>();
        while (await stream.MoveNextAsync(Cancel()))
        {
            events.Add((stream.Current.Header.Type, stream.Current.Position));
            if (stop(stream.Current))
            {
                return events;
            }
        }

        throw new InvalidOperationException("The stream ended early.");
    }

    private async Task<string> FirstBinlogAsync()
    {
        await using var connection = await ReplicationConnection.OpenAsync(live.Options(5099));
        var logs = await connection.QueryAsync("SHOW BINARY LOGS");
        return logs.Rows[0][0]!;
    }
}
