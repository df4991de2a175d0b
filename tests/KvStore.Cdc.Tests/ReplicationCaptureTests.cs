using System.IO.Pipelines;
using KvStore.Cdc.Events;
using KvStore.Cdc.Protocol;
using KvStore.Cdc.Tests.Protocol;

namespace KvStore.Cdc.Tests;

/// <summary>Replays the captured MariaDB replication streams through the packet layer and the position tracker.</summary>
public sealed class ReplicationCaptureTests
{
    public static TheoryData<string> CaptureNames => [.. StreamCapture.Names];

    [Theory]
    [MemberData(nameof(CaptureNames))]
    public async Task Replay_yields_every_indexed_event_with_positions_following_the_rules(string name)
    {
        var capture = StreamCapture.Load(name);
        var (events, ending) = await ReplayAsync(capture);

        var eventLines = capture.Index.Where(l => l.EventType is not null).ToList();
        Assert.Equal(eventLines.Count, events.Count);

        // Independent model of the position rules, fed from the index.
        var (file, position) = StartOf(capture);
        for (var i = 0; i < eventLines.Count; i++)
        {
            var line = eventLines[i];
            var recorded = events[i];
            Assert.Equal((BinlogEventType)line.EventType!.Value, recorded.Header.Type);
            Assert.Equal(line.EventLength, recorded.Header.EventLength);
            Assert.Equal(line.LogPosition, recorded.Header.LogPosition);
            Assert.Equal(line.Flags, recorded.Header.Flags);
            Assert.Equal(line.EventLength, (uint)recorded.Length);

            if (line.EventType == 4)
            {
                (file, position) = (line.RotateName!, line.RotatePosition!.Value);
                var nameLength = line.RotateName!.Length;
                Assert.Equal((int)line.EventLength - 19 - 8 - nameLength, recorded.ChecksumLength);
            }
            else if (line.EventType is not (27 or 41) && line.LogPosition > 0 && (line.Flags & 0x20) == 0)
            {
                position = line.LogPosition;
            }

            Assert.Equal(new BinlogPosition(file, position), recorded.Position);

            // Every event but the FDE (which always has the field) follows the checksum state: the
            // negotiated value before the first FDE, then the current file's FDE.
            if (line.EventType != 15)
            {
                Assert.Equal(recorded.FileChecksum == BinlogChecksumAlgorithm.Crc32 ? 4 : 0, recorded.ChecksumLength);
            }
        }

        var endsWithEof = capture.Index[^1].Status == 0xFE;
        Assert.Equal(endsWithEof ? "eof" : "connection-lost", ending);
    }

    [Fact]
    public async Task Dump_from_position_handles_fake_rotates_and_the_none_to_crc32_file_switch()
    {
        var capture = StreamCapture.Load("dump-from-position");
        var (events, ending) = await ReplayAsync(capture);

        // The first fake ROTATE follows @master_binlog_checksum (CRC32): it has a CRC.
        Assert.True(events[0].Header.IsArtificial);
        Assert.Equal(4, events[0].ChecksumLength);
        Assert.Equal(new BinlogPosition("mariadb-bin.000001", 4), events[0].Position);
        Assert.Equal(new BinlogPosition("mariadb-bin.000001", 256), events[1].Position);

        // ANNOTATE_ROWS is not sent, so log_pos jumps: GTID at 2136, then TABLE_MAP at 2417.
        Assert.Equal(2136, events[14].Position.Position);
        Assert.Equal(BinlogEventType.TableMap, events[15].Header.Type);
        Assert.Equal(2417, events[15].Position.Position);

        // 000004 is NONE: its events have no CRC.
        Assert.Equal(BinlogChecksumAlgorithm.None, events[85].FileChecksum);
        Assert.Equal(4, events[85].ChecksumLength); // the FDE always carries the checksum field
        Assert.Equal(0, events[86].ChecksumLength);

        // #101 real ROTATE at the end of 000004 (NONE), #102 fake ROTATE for 000005: no CRC.
        Assert.Equal(BinlogEventType.Rotate, events[101].Header.Type);
        Assert.False(events[101].Header.IsArtificial);
        Assert.Equal(0, events[101].ChecksumLength);
        Assert.Equal(new BinlogPosition("mariadb-bin.000005", 4), events[101].Position);
        Assert.Equal(0, events[102].ChecksumLength);

        // #107: fake ROTATE for 000006 has no CRC (previous file NONE) although 000006 is CRC32 (#108 FDE).
        Assert.Equal(new BinlogPosition("mariadb-bin.000006", 4), events[107].Position);
        Assert.Equal(0, events[107].ChecksumLength);
        Assert.Equal(BinlogChecksumAlgorithm.Crc32, events[108].FileChecksum);
        Assert.Equal(4, events[109].ChecksumLength);

        Assert.Equal("eof", ending);
        Assert.Equal(new BinlogPosition("mariadb-bin.000006", 434), events[^1].Position);
    }

    [Fact]
    public async Task Dump_from_mid_position_fde_with_log_pos_zero_does_not_move_the_position()
    {
        var capture = StreamCapture.Load("dump-from-mid-position");
        var (events, _) = await ReplayAsync(capture);

        Assert.Equal(new BinlogPosition("mariadb-bin.000001", 2094), events[0].Position);
        Assert.Equal(BinlogEventType.FormatDescription, events[1].Header.Type);
        Assert.Equal(0u, events[1].Header.LogPosition);
        Assert.Equal(new BinlogPosition("mariadb-bin.000001", 2094), events[1].Position);
        Assert.Equal(2136, events[2].Position.Position);

        // A mid-file start knows no GTID state until the next file's GTID_LIST.
        Assert.Null(events[0].Checkpoint.MariaDbGtid);
        Assert.Equal(new BinlogPosition("mariadb-bin.000001", 2094), events[2].Checkpoint.Position);
        Assert.Equal(new BinlogPosition("mariadb-bin.000001", 2528), events[5].Checkpoint.Position);
        Assert.Equal("0-101-22", events[^1].Checkpoint.MariaDbGtid?.ToString());
        Assert.Equal(new BinlogPosition("mariadb-bin.000006", 434), events[^1].Checkpoint.Position);
    }

    [Fact]
    public async Task Dump_from_gtid_artificial_gtid_list_does_not_move_the_position()
    {
        var capture = StreamCapture.Load("dump-from-gtid");
        var (events, _) = await ReplayAsync(capture);

        var artificialList = events[4];
        Assert.Equal(BinlogEventType.MariaDbGtidList, artificialList.Header.Type);
        Assert.True(artificialList.Header.IsArtificial);
        Assert.Equal(2094u, artificialList.Header.LogPosition);
        Assert.Equal(new BinlogPosition("mariadb-bin.000001", 330), artificialList.Position);
        Assert.Equal(2136, events[5].Position.Position);

        // Until the first transaction ends the file offset is not a safe resume point; the GTID is.
        Assert.Null(artificialList.Checkpoint.Position);
        Assert.Equal("0-101-5", artificialList.Checkpoint.MariaDbGtid?.ToString());
        Assert.Equal(BinlogStartKind.MariaDbGtid, artificialList.Checkpoint.ToStartPosition()!.Kind);

        Assert.Equal(BinlogEventType.Xid, events[8].Header.Type);
        Assert.Equal(new BinlogPosition("mariadb-bin.000001", 2528), events[8].Checkpoint.Position);
        Assert.Equal("0-101-6", events[8].Checkpoint.MariaDbGtid?.ToString());
        Assert.Equal("0-101-22", events[^1].Checkpoint.MariaDbGtid?.ToString());
    }

    [Fact]
    public async Task Dump_checksum_none_fake_rotate_has_no_crc_but_later_events_do()
    {
        var capture = StreamCapture.Load("dump-checksum-none");
        var (events, _) = await ReplayAsync(capture);

        Assert.Equal(45u, events[0].Header.EventLength);
        Assert.Equal(0, events[0].ChecksumLength);
        Assert.Equal(new BinlogPosition("mariadb-bin.000002", 4), events[0].Position);
        Assert.Equal(BinlogChecksumAlgorithm.Crc32, events[1].FileChecksum);
        Assert.All(events.Skip(1).TakeWhile(e => e.Position.FileName == "mariadb-bin.000002"), e => Assert.Equal(4, e.ChecksumLength));
    }

    [Fact]
    public async Task Heartbeats_do_not_move_the_position_and_a_closed_capture_is_a_lost_connection()
    {
        var capture = StreamCapture.Load("heartbeat-tail");
        var (events, ending) = await ReplayAsync(capture);

        var heartbeats = events.Where(e => e.Header.Type == BinlogEventType.Heartbeat).ToList();
        Assert.Equal(4, heartbeats.Count);
        Assert.All(heartbeats, h =>
        {
            Assert.True(h.IsHeartbeat);
            Assert.Equal(434u, h.Header.LogPosition);
            Assert.Equal(4, h.ChecksumLength);
            Assert.Equal(new BinlogPosition("mariadb-bin.000006", 434), h.Position);
        });
        Assert.Equal("connection-lost", ending);
    }

    [Fact]
    public async Task Annotate_flag_capture_delivers_annotate_rows_and_follows_their_log_pos()
    {
        var capture = StreamCapture.Load("dump-annotate-flag");
        var (events, _) = await ReplayAsync(capture);

        var annotate = events.FindIndex(e => e.Header.Type == BinlogEventType.MariaDbAnnotateRows);
        Assert.True(annotate > 0);
        Assert.Equal(594, events[annotate].Position.Position);
        Assert.Equal(707, events[annotate + 1].Position.Position);
    }

    [Fact]
    public async Task Tracker_checkpoint_stays_at_the_transaction_start_until_xid()
    {
        var capture = StreamCapture.Load("dump-from-position");
        var (events, _) = await ReplayAsync(capture);

        Assert.Equal("", events[2].Checkpoint.MariaDbGtid?.ToString()); // empty GTID_LIST of the first file
        Assert.Equal("0-101-1", events[5].Checkpoint.MariaDbGtid?.ToString()); // DDL: standalone GTID + QUERY
        Assert.Equal(new BinlogPosition("mariadb-bin.000001", 2094), events[13].Checkpoint.Position);
        Assert.Equal(new BinlogPosition("mariadb-bin.000001", 2094), events[15].Checkpoint.Position); // TABLE_MAP inside the txn
        Assert.Equal("0-101-5", events[15].Checkpoint.MariaDbGtid?.ToString());
        Assert.Equal(new BinlogPosition("mariadb-bin.000001", 2528), events[17].Checkpoint.Position); // XID
        Assert.Equal("0-101-6", events[17].Checkpoint.MariaDbGtid?.ToString());
        Assert.Equal("0-101-22", events[^1].Checkpoint.MariaDbGtid?.ToString());
    }

    [Fact]
    public async Task Corrupted_event_fails_the_crc32_check()
    {
        var capture = StreamCapture.Load("dump-from-position");
        var bytes = await File.ReadAllBytesAsync(capture.StreamPath);

        // Packet #2 (GTID_LIST, 30-byte payload) starts after #0 (4+50) and #1 (4+253); flip its last CRC byte.
        bytes[(4 + 50) + (4 + 253) + 4 + 30 - 1] ^= 0xFF;
        await using var stream = BinlogEventStream.FromCapture(PipeReader.Create(new MemoryStream(bytes)), StartOf(capture).ToStart(), BinlogChecksumAlgorithm.Crc32);
        Assert.True(await stream.MoveNextAsync());
        Assert.True(await stream.MoveNextAsync());
        var error = await Assert.ThrowsAsync<ReplicationProtocolException>(async () => await stream.MoveNextAsync());
        Assert.Equal(ReplicationErrorCode.ChecksumMismatch, error.ErrorCode);

        // The same bytes pass with verification off.
        await using var lenient = BinlogEventStream.FromCapture(PipeReader.Create(new MemoryStream(bytes)), StartOf(capture).ToStart(), BinlogChecksumAlgorithm.Crc32, verifyChecksums: false);
        Assert.True(await lenient.MoveNextAsync());
        Assert.True(await lenient.MoveNextAsync());
        Assert.True(await lenient.MoveNextAsync());
    }

    [Fact]
    public async Task Replay_reads_from_the_source_only_as_fast_as_events_are_consumed()
    {
        var capture = StreamCapture.Load("dump-from-position");
        var counting = new CountingStream(File.OpenRead(capture.StreamPath));
        var pipe = PipeReader.Create(counting, new StreamPipeReaderOptions(bufferSize: 4096, minimumReadSize: 1024));
        await using var stream = BinlogEventStream.FromCapture(pipe, StartOf(capture).ToStart(), BinlogChecksumAlgorithm.Crc32);

        Assert.True(await stream.MoveNextAsync());
        Assert.True(counting.BytesRead <= 8192, $"read {counting.BytesRead} bytes for one event");
        Assert.True(counting.Length > 30_000);
    }

    [Fact]
    public async Task Steady_state_reading_allocates_almost_nothing_per_event()
    {
        var capture = StreamCapture.Load("dump-from-position");
        var bytes = await File.ReadAllBytesAsync(capture.StreamPath);
        await CountAsync(bytes); // warm up JIT and pools

        // A MemoryStream source completes every read synchronously, so all work stays on this thread.
        var before = GC.GetAllocatedBytesForCurrentThread();
        var events = await CountAsync(bytes);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(113, events);

        // Setup (pipe, tracker) plus one file-name string per ROTATE; no per-event garbage. Debug builds
        // compile async state machines as classes (one object per call), so only optimized builds are held to it.
        var optimized = typeof(BinlogEventStream).Assembly.GetCustomAttributes(typeof(System.Diagnostics.DebuggableAttribute), false)
            .Cast<System.Diagnostics.DebuggableAttribute>()
            .All(a => !a.IsJITOptimizerDisabled);
        var limit = optimized ? 16_000 : 1_000 * events;
        Assert.True(allocated < limit, $"{allocated} bytes allocated for {events} events (optimized: {optimized})");

        static async Task<int> CountAsync(byte[] bytes)
        {
            await using var stream = BinlogEventStream.FromCapture(PipeReader.Create(new MemoryStream(bytes)), BinlogStartPosition.FromFile("mariadb-bin.000001"), BinlogChecksumAlgorithm.Crc32);
            var count = 0;
            while (await stream.MoveNextAsync())
            {
                count++;
            }

            return count;
        }
    }

    [Fact]
    public async Task Err_1236_in_the_stream_is_a_binlog_not_available_exception()
    {
        var message = "Could not find first log file name in binary log index file"u8.ToArray();
        var err = new byte[] { 0xFF, 0xD4, 0x04, (byte)'#', (byte)'H', (byte)'Y', (byte)'0', (byte)'0', (byte)'0' }.Concat(message).ToArray();
        await using var stream = BinlogEventStream.FromCapture(PipeReader.Create(new MemoryStream(PacketBytes.Frame(err, sequenceId: 1))), BinlogStartPosition.FromFile("gone.000001"), BinlogChecksumAlgorithm.Crc32);

        var error = await Assert.ThrowsAsync<BinlogNotAvailableException>(async () => await stream.MoveNextAsync());
        Assert.Equal(ReplicationErrorCode.BinlogNotAvailable, error.ErrorCode);
        Assert.False(error.IsTransient);
        Assert.Equal("HY000", error.SqlState);
        Assert.Contains("gone.000001:4", error.Message, StringComparison.Ordinal);
        Assert.Contains("Could not find first log file", error.ServerMessage, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Err_1236_for_a_duplicate_server_id_is_not_a_resync()
    {
        var text = "A slave with the same server_uuid/server_id as this slave has connected to the master"u8.ToArray();
        var err = new byte[] { 0xFF, 0xD4, 0x04, (byte)'#', (byte)'H', (byte)'Y', (byte)'0', (byte)'0', (byte)'0' }.Concat(text).ToArray();
        await using var stream = BinlogEventStream.FromCapture(PipeReader.Create(new MemoryStream(PacketBytes.Frame(err, sequenceId: 1))), BinlogStartPosition.FromFile("f.000001"), BinlogChecksumAlgorithm.Crc32);

        var error = await Assert.ThrowsAsync<ServerErrorException>(async () => await stream.MoveNextAsync());
        Assert.Equal(1236, error.ServerErrorCode);
    }

    internal static (string File, long Position) StartOf(StreamCapture capture) =>
        capture.Name == "dump-from-gtid" ? (string.Empty, 0) : (capture.DumpFile, capture.DumpPosition);

    private static async Task<(List<Recorded> Events, string Ending)> ReplayAsync(StreamCapture capture)
    {
        var start = capture.Name == "dump-from-gtid"
            ? BinlogStartPosition.FromMariaDbGtid("0-101-5")
            : BinlogStartPosition.FromFile(capture.DumpFile, capture.DumpPosition);
        var negotiated = capture.Setup.Any(s => s.Contains("'NONE'", StringComparison.Ordinal))
            ? BinlogChecksumAlgorithm.None
            : BinlogChecksumAlgorithm.Crc32;

        await using var stream = BinlogEventStream.FromCapture(PipeReader.Create(File.OpenRead(capture.StreamPath)), start, negotiated);
        var events = new List<Recorded>();
        try
        {
            while (await stream.MoveNextAsync())
            {
                var current = stream.Current;
                events.Add(new Recorded(current.Header, current.Data.Length, current.ChecksumLength, current.Position, stream.ChecksumAlgorithm, stream.Checkpoint, current.IsHeartbeat));
            }
        }
        catch (ReplicationConnectionLostException)
        {
            return (events, "connection-lost");
        }

        Assert.True(stream.IsCompleted);
        return (events, "eof");
    }

    private sealed record Recorded(BinlogEventHeader Header, int Length, int ChecksumLength, BinlogPosition Position, BinlogChecksumAlgorithm FileChecksum, ReplicationCheckpoint Checkpoint, bool IsHeartbeat);
}

internal static class StartTupleExtensions
{
    public static BinlogStartPosition ToStart(this (string File, long Position) start) => BinlogStartPosition.FromFile(start.File, start.Position);
}
