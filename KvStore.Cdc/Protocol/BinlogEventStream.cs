using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using KvStore.Cdc.Events;

namespace KvStore.Cdc.Protocol;

/// <summary>
/// The server-to-client half of a binlog dump: reads packets, turns them into <see cref="BinlogRawEvent"/>s,
/// verifies CRC32s and keeps the position. Works the same on a live connection and on a captured
/// <c>.stream</c> file (<see cref="FromCapture"/>).
/// </summary>
/// <remarks>
/// <para>Pull-based: nothing is read from the server until the consumer asks for the next event, so a
/// slow consumer slows the server down through TCP flow control instead of buffering without bound.</para>
/// <para>Each event's bytes stay valid until the next <see cref="MoveNextAsync"/>. After an exception or a
/// cancelled read the stream is faulted: dispose it and start a new one from <see cref="Checkpoint"/>.</para>
/// <para>Not thread-safe.</para>
/// </remarks>
internal sealed class BinlogEventStream : IAsyncDisposable
{
    private readonly PacketReader _packets;
    private readonly BinlogPositionTracker _tracker;
    private readonly bool _verifyChecksums;
    private readonly string _requestedStart;
    private readonly IAsyncDisposable? _owner;
    private BinlogRawEvent _current;
    private bool _completed;
    private bool _faulted;
    private bool _disposed;

    internal BinlogEventStream(
        PacketReader packets,
        BinlogPositionTracker tracker,
        bool verifyChecksums,
        string requestedStart,
        IAsyncDisposable? owner,
        ServerVersion? serverVersion = null,
        uint connectionId = 0)
    {
        _packets = packets;
        _tracker = tracker;
        _verifyChecksums = verifyChecksums;
        _requestedStart = requestedStart;
        _owner = owner;
        ServerVersion = serverVersion;
        ConnectionId = connectionId;
    }

    /// <summary>The event read by the last successful <see cref="MoveNextAsync"/>.</summary>
    public BinlogRawEvent Current => _current;

    /// <summary>File and offset after the last event handed out (may be inside a transaction).</summary>
    public BinlogPosition Position => _tracker.Position;

    /// <summary>The last point outside a transaction: resume from here after a reconnect.</summary>
    public ReplicationCheckpoint Checkpoint => _tracker.Checkpoint;

    /// <summary>True between a transaction's GTID/BEGIN and its XID/COMMIT.</summary>
    public bool InTransaction => _tracker.InTransaction;

    /// <summary>Checksum algorithm of the current binlog file.</summary>
    public BinlogChecksumAlgorithm ChecksumAlgorithm => _tracker.ChecksumAlgorithm;

    /// <summary>
    /// The session's <c>@master_binlog_checksum</c>: the checksum state before the first FDE (it decides the
    /// first fake ROTATE). An event parser that tracks checksums itself starts from this value.
    /// </summary>
    public BinlogChecksumAlgorithm NegotiatedChecksum => _tracker.NegotiatedChecksum;

    /// <summary>True once the server sent EOF (non-blocking dumps only).</summary>
    public bool IsCompleted => _completed;

    /// <summary>The server, when connected live.</summary>
    public ServerVersion? ServerVersion { get; }

    /// <summary>The server-side connection id of the dump connection (for <c>KILL</c>); 0 for captures.</summary>
    public uint ConnectionId { get; }

    /// <summary>
    /// Replays a capture: the packets a server sent after COM_BINLOG_DUMP (first sequence id 1), through
    /// the same packet and position logic as a live dump.
    /// </summary>
    public static BinlogEventStream FromCapture(
        PipeReader packets,
        BinlogStartPosition start,
        BinlogChecksumAlgorithm negotiatedChecksum,
        bool verifyChecksums = true,
        TimeSpan? readTimeout = null,
        TimeProvider? timeProvider = null,
        MariaDbGtidPosition? knownMariaDbGtid = null,
        MySqlGtidSet? knownMySqlGtid = null)
    {
        ArgumentNullException.ThrowIfNull(packets);
        var reader = new PacketReader(packets, timeProvider)
        {
            SequenceId = 1,
            ReadTimeout = readTimeout ?? Timeout.InfiniteTimeSpan,
            Activity = "waiting for binlog events",
        };
        var tracker = new BinlogPositionTracker(start, negotiatedChecksum, knownMariaDbGtid, knownMySqlGtid);
        return new BinlogEventStream(reader, tracker, verifyChecksums, start.ToString(), owner: null);
    }

    /// <summary>
    /// Reads the next event into <see cref="Current"/>. Returns false when the server sent EOF (non-blocking
    /// dump). The previous event's bytes become invalid.
    /// </summary>
    /// <exception cref="BinlogNotAvailableException">ERR 1236: the start position is purged or invalid; resync.</exception>
    /// <exception cref="ServerErrorException">Any other ERR packet.</exception>
    /// <exception cref="ReplicationConnectionLostException">The connection closed or failed.</exception>
    /// <exception cref="ReplicationTimeoutException">Nothing, not even a heartbeat, within the read timeout.</exception>
    /// <exception cref="ReplicationProtocolException">Malformed data or a CRC32 mismatch.</exception>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<bool> MoveNextAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_completed)
        {
            return false;
        }

        if (_faulted)
        {
            throw new ReplicationConnectionLostException("The binlog stream failed earlier; dispose it and reconnect from the checkpoint.");
        }

        try
        {
            var payload = await _packets.ReadPayloadAsync(cancellationToken).ConfigureAwait(false);
            return Accept(payload);
        }
        catch
        {
            _faulted = true;
            throw;
        }
    }

    /// <summary>All events until EOF, as an async sequence (each item valid until the next is requested).</summary>
    public async IAsyncEnumerable<BinlogRawEvent> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        while (await MoveNextAsync(cancellationToken).ConfigureAwait(false))
        {
            yield return _current;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _packets.Dispose();
        if (_owner is not null)
        {
            await _owner.DisposeAsync().ConfigureAwait(false);
        }
    }

    private bool Accept(ReadOnlyMemory<byte> payload)
    {
        var span = payload.Span;
        if (span.IsEmpty)
        {
            throw new ReplicationProtocolException("Empty packet in the binlog stream.");
        }

        switch (span[0])
        {
            case ServerPackets.OkHeader:
                break;
            case ServerPackets.ErrHeader:
                var (code, sqlState, message) = ServerPackets.ParseError(span);
                if (code == BinlogNotAvailableException.ServerErrorNumber && IsResyncError(message))
                {
                    throw new BinlogNotAvailableException(sqlState, message, _requestedStart);
                }

                throw new ServerErrorException(code, sqlState, message, $"in the binlog stream at {_tracker.Position}");
            case ServerPackets.EofHeader when span.Length < 9:
                _completed = true;
                _current = default;
                return false;
            default:
                throw new ReplicationProtocolException($"Unexpected packet 0x{span[0]:X2} ({span.Length} bytes) in the binlog stream.");
        }

        var eventMemory = payload[1..];
        var eventBytes = eventMemory.Span;
        var header = BinlogEventHeader.Read(eventBytes.Length >= BinlogEventHeader.Size
            ? eventBytes
            : throw new ReplicationProtocolException($"Binlog event of {eventBytes.Length} bytes is shorter than its header."));
        if (header.EventLength != (uint)eventBytes.Length)
        {
            throw new ReplicationProtocolException(
                $"Binlog event at {_tracker.Position} says it is {header.EventLength} bytes but the packet holds {eventBytes.Length}.");
        }

        var (checksumLength, verify) = _tracker.GetChecksum(header, eventBytes);
        if (eventBytes.Length < BinlogEventHeader.Size + checksumLength)
        {
            throw new ReplicationProtocolException($"Binlog event of {eventBytes.Length} bytes cannot hold its checksum.");
        }

        if (verify && _verifyChecksums && !(header.Type == BinlogEventType.FormatDescription
                ? BinlogChecksum.MatchesFormatDescription(eventBytes)
                : BinlogChecksum.Matches(eventBytes)))
        {
            throw new ReplicationProtocolException(
                ReplicationErrorCode.ChecksumMismatch,
                $"CRC32 mismatch in a {header.Type} event ending at {_tracker.Position.FileName}:{header.LogPosition}.");
        }

        _tracker.Apply(header, eventBytes, checksumLength);
        _current = new BinlogRawEvent(header, eventMemory, checksumLength, _tracker.Position);
        return true;
    }

    /// <summary>
    /// 1236 also reports a duplicate replica server_id/UUID and checksum negotiation failures; those are
    /// configuration problems, not a lost position, and must not trigger a resync.
    /// </summary>
    private static bool IsResyncError(string message) =>
        !message.Contains("server_id", StringComparison.OrdinalIgnoreCase)
        && !message.Contains("server_uuid", StringComparison.OrdinalIgnoreCase)
        && !message.Contains("checksum", StringComparison.OrdinalIgnoreCase);
}
