using System.Buffers.Binary;
using System.Text;
using KvStore.Cdc.Events;

namespace KvStore.Cdc.Protocol;

/// <summary>
/// Follows the replication position through the event stream using only event headers and a few
/// fixed body fields (ROTATE target, FDE checksum algorithm, GTID ids, COMMIT/ROLLBACK queries).
/// </summary>
/// <remarks>
/// Rules (see docs/binlog-protocol research, section 2.4):
/// <list type="bullet">
/// <item>ROTATE (fake or real) sets file and offset from its body.</item>
/// <item>Otherwise the offset becomes <c>header.log_pos</c>, but only when it is &gt; 0 and the event is not
/// ARTIFICIAL (0x20): a resumed FDE has log_pos 0, the GTID-start GTID_LIST is artificial.</item>
/// <item>Offsets are never summed: MariaDB leaves out ANNOTATE_ROWS, so log_pos jumps.</item>
/// <item>Heartbeats (27, 41) move nothing.</item>
/// <item>The checksum state for events that are not FDEs is the current file's FDE algorithm; before the
/// first FDE it is the negotiated <c>@master_binlog_checksum</c>. Fake ROTATEs and heartbeats are
/// checked by their bytes (CRC present or not), which is robust against either rule.</item>
/// </list>
/// The checkpoint (safe resume point) moves only when the stream is outside a transaction.
/// </remarks>
internal sealed class BinlogPositionTracker
{
    private const int DefaultQueryPostHeaderLength = 13;
    private const byte XaPrepareEventType = 38;

    private string _fileName;
    private long _position;
    private bool _positionReliable;
    private bool _fileFromStart;
    private BinlogChecksumAlgorithm _checksum;
    private int _queryPostHeaderLength = DefaultQueryPostHeaderLength;

    private bool _inTransaction;
    private bool _sawBegin;
    private bool _standalone;
    private bool _mySqlStyleGroup;
    private MariaDbGtid? _pendingMariaDbGtid;
    private (Guid SourceId, long Number)? _pendingMySqlGtid;

    private string? _checkpointFile;
    private long _checkpointPosition;
    private SortedDictionary<uint, MariaDbGtid>? _mariaDbState;
    private MySqlGtidSet? _mySqlState;
    private ReplicationCheckpoint? _checkpoint;

    /// <summary>Starts tracking at a resolved start (not <see cref="BinlogStartKind.Now"/>).</summary>
    /// <param name="start">Where the dump was asked to start.</param>
    /// <param name="negotiatedChecksum">The value of <c>@master_binlog_checksum</c> for this session.</param>
    /// <param name="knownMariaDbGtid">MariaDB GTID state exactly at <paramref name="start"/>, when known.</param>
    /// <param name="knownMySqlGtid">MySQL executed GTID set exactly at <paramref name="start"/>, when known.</param>
    public BinlogPositionTracker(
        BinlogStartPosition start,
        BinlogChecksumAlgorithm negotiatedChecksum,
        MariaDbGtidPosition? knownMariaDbGtid = null,
        MySqlGtidSet? knownMySqlGtid = null)
    {
        ArgumentNullException.ThrowIfNull(start);
        _checksum = negotiatedChecksum;
        NegotiatedChecksum = negotiatedChecksum;
        _fileName = string.Empty;
        switch (start.Kind)
        {
            case BinlogStartKind.FilePosition:
                var position = start.FilePosition!.Value;
                _fileName = position.FileName;
                _position = position.Position;
                _positionReliable = true;
                _fileFromStart = position.Position <= 4;
                _checkpointFile = _fileName;
                _checkpointPosition = _position;
                break;
            case BinlogStartKind.MariaDbGtid:
                knownMariaDbGtid ??= start.MariaDbGtid;
                break;
            case BinlogStartKind.MySqlGtid:
                knownMySqlGtid ??= start.MySqlGtid;
                break;
            default:
                throw new ArgumentException("Resolve BinlogStartPosition.Now to a file position before tracking.", nameof(start));
        }

        if (knownMariaDbGtid is not null)
        {
            _mariaDbState = new SortedDictionary<uint, MariaDbGtid>(knownMariaDbGtid.Gtids.ToDictionary(g => g.DomainId));
        }

        _mySqlState = knownMySqlGtid?.Clone();
    }

    /// <summary>File and offset after the last event applied (offset 0 and empty file before the first ROTATE of a GTID start).</summary>
    public BinlogPosition Position => new(_fileName, _position);

    /// <summary>The session's <c>@master_binlog_checksum</c> (the state before the first FDE).</summary>
    public BinlogChecksumAlgorithm NegotiatedChecksum { get; }

    /// <summary>Checksum algorithm of the current file (from its FDE), or the negotiated one before the first FDE.</summary>
    public BinlogChecksumAlgorithm ChecksumAlgorithm => _checksum;

    /// <summary>True between a transaction's first event (GTID/BEGIN) and its end (XID/COMMIT/ROLLBACK/DDL).</summary>
    public bool InTransaction => _inTransaction;

    /// <summary>The last safe resume point (a snapshot, rebuilt only when it changed).</summary>
    public ReplicationCheckpoint Checkpoint => _checkpoint ??= new ReplicationCheckpoint(
        _checkpointFile is null ? null : new BinlogPosition(_checkpointFile, _checkpointPosition),
        _mariaDbState is null ? null : MariaDbGtidPosition.FromGtids(_mariaDbState.Values),
        _mySqlState?.Clone());

    /// <summary>
    /// How many trailing checksum bytes <paramref name="eventBytes"/> has, and whether they are a CRC32 to
    /// verify (false when absent, when the FDE says NONE, or when the CRC was already used to detect them).
    /// </summary>
    public (int Length, bool Verify) GetChecksum(in BinlogEventHeader header, ReadOnlySpan<byte> eventBytes)
    {
        switch (header.Type)
        {
            case BinlogEventType.FormatDescription:
                var (hasField, algorithm, _) = ReadFormatDescription(eventBytes);
                return hasField ? (BinlogChecksum.Length, algorithm == BinlogChecksumAlgorithm.Crc32) : (0, false);

            case BinlogEventType.Rotate when header.IsArtificial || header.LogPosition == 0:
            case BinlogEventType.Heartbeat:
            case BinlogEventType.HeartbeatV2:
                // The fake ROTATE follows the checksum state at the moment it is sent (negotiated value at
                // connect, previous file's FDE after a ROTATE), and servers differ for heartbeats: the bytes
                // decide. A false match needs 4 name bytes equal to the CRC of the rest (2^-32).
                return (BinlogChecksum.Matches(eventBytes) ? BinlogChecksum.Length : 0, false);

            default:
                return _checksum == BinlogChecksumAlgorithm.Crc32 ? (BinlogChecksum.Length, true) : (0, false);
        }
    }

    /// <summary>Applies one event (header already parsed; <paramref name="checksumLength"/> from <see cref="GetChecksum"/>).</summary>
    public void Apply(in BinlogEventHeader header, ReadOnlySpan<byte> eventBytes, int checksumLength)
    {
        var body = eventBytes[BinlogEventHeader.Size..^checksumLength];
        switch (header.Type)
        {
            case BinlogEventType.Heartbeat:
            case BinlogEventType.HeartbeatV2:
                return;

            case BinlogEventType.Rotate:
                ApplyRotate(header, body);
                break;

            case BinlogEventType.FormatDescription:
                var (_, algorithm, queryPostHeader) = ReadFormatDescription(eventBytes);
                _checksum = algorithm;
                _queryPostHeaderLength = queryPostHeader;
                MoveTo(header);
                break;

            default:
                MoveTo(header);
                break;
        }

        TrackTransaction(header, body);
        if (!_inTransaction && _positionReliable && (_checkpointFile != _fileName || _checkpointPosition != _position))
        {
            _checkpointFile = _fileName;
            _checkpointPosition = _position;
            _checkpoint = null;
        }
    }

    private void MoveTo(in BinlogEventHeader header)
    {
        if (header.LogPosition > 0 && !header.IsArtificial)
        {
            _position = header.LogPosition;
        }
    }

    private void ApplyRotate(in BinlogEventHeader header, ReadOnlySpan<byte> body)
    {
        if (body.Length < 9)
        {
            throw new ReplicationProtocolException($"ROTATE event body of {body.Length} bytes is too short.");
        }

        var position = BinaryPrimitives.ReadUInt64LittleEndian(body);
        var name = body[8..];
        foreach (var c in name)
        {
            if (c is < 0x20 or > 0x7E)
            {
                throw new ReplicationProtocolException(
                    $"ROTATE names a file with non-printable bytes ({Convert.ToHexString(name)}); its checksum state was misjudged or the event is corrupt.");
            }
        }

        var fileName = Encoding.ASCII.GetString(name);
        if (!string.Equals(fileName, _fileName, StringComparison.Ordinal))
        {
            _fileName = fileName;
        }

        _position = (long)position;
        _fileFromStart = position <= 4;

        // A real ROTATE (end of a file) names exact coordinates, so they can be resumed from even after a GTID start.
        if (!header.IsArtificial && header.LogPosition != 0)
        {
            _positionReliable = true;
        }
    }

    private void TrackTransaction(in BinlogEventHeader header, ReadOnlySpan<byte> body)
    {
        switch (header.Type)
        {
            case BinlogEventType.MariaDbGtid when body.Length >= 13:
                BeginGroup(mySqlStyle: false, standalone: (body[12] & 0x01) != 0);
                _pendingMariaDbGtid = new MariaDbGtid(
                    BinaryPrimitives.ReadUInt32LittleEndian(body[8..]),
                    header.ServerId,
                    BinaryPrimitives.ReadUInt64LittleEndian(body));
                break;

            case BinlogEventType.MySqlGtid when body.Length >= 25:
                BeginGroup(mySqlStyle: true, standalone: false);
                _pendingMySqlGtid = (new Guid(body.Slice(1, 16), bigEndian: true), BinaryPrimitives.ReadInt64LittleEndian(body[17..]));
                break;

            case BinlogEventType.MySqlAnonymousGtid:
                BeginGroup(mySqlStyle: true, standalone: false);
                break;

            case BinlogEventType.MySqlGtidTagged:
                // Tagged GTIDs cannot be represented in MySqlGtidSet: stop offering a GTID resume point.
                BeginGroup(mySqlStyle: true, standalone: false);
                _mySqlState = null;
                _checkpoint = null;
                break;

            case BinlogEventType.Xid:
            case (BinlogEventType)XaPrepareEventType:
                EndGroup();
                break;

            case BinlogEventType.Query:
                ApplyQuery(ClassifyQuery(body));
                break;

            case BinlogEventType.MariaDbGtidList when !_inTransaction:
                MergeGtidList(body);
                break;

            case BinlogEventType.MySqlPreviousGtids when !_inTransaction:
                MergePreviousGtids(body);
                break;
        }
    }

    private void BeginGroup(bool mySqlStyle, bool standalone)
    {
        _inTransaction = true;
        _sawBegin = false;
        _standalone = standalone;
        _mySqlStyleGroup = mySqlStyle;
        _pendingMariaDbGtid = null;
        _pendingMySqlGtid = null;
    }

    private void EndGroup()
    {
        if (_pendingMariaDbGtid is { } mariaDb && _mariaDbState is not null)
        {
            _mariaDbState[mariaDb.DomainId] = mariaDb;
            _checkpoint = null;
        }

        if (_pendingMySqlGtid is { } mySql && _mySqlState is not null)
        {
            _mySqlState.Add(mySql.SourceId, mySql.Number);
            _checkpoint = null;
        }

        // After the first complete transaction the file offset is exact even after a GTID start.
        if (!string.IsNullOrEmpty(_fileName))
        {
            _positionReliable = true;
        }

        _inTransaction = false;
        _sawBegin = false;
        _standalone = false;
        _pendingMariaDbGtid = null;
        _pendingMySqlGtid = null;
    }

    private void ApplyQuery(QueryKind kind)
    {
        switch (kind)
        {
            case QueryKind.Begin:
                _inTransaction = true;
                _sawBegin = true;
                break;
            case QueryKind.End:
                EndGroup();
                break;
            default:
                // A statement outside BEGIN...COMMIT is its own transaction: DDL after a standalone MariaDB
                // GTID or after a MySQL GTID without BEGIN, or any statement with no GTID at all.
                if (!_inTransaction || _standalone || (_mySqlStyleGroup && !_sawBegin))
                {
                    EndGroup();
                }

                break;
        }
    }

    private QueryKind ClassifyQuery(ReadOnlySpan<byte> body)
    {
        if (body.Length < _queryPostHeaderLength || _queryPostHeaderLength < 13)
        {
            return QueryKind.Other;
        }

        int databaseLength = body[8];
        int statusLength = BinaryPrimitives.ReadUInt16LittleEndian(body[11..]);
        var start = _queryPostHeaderLength + statusLength + databaseLength + 1;
        if (start > body.Length)
        {
            return QueryKind.Other;
        }

        var sql = body[start..].Trim(" \t\r\n;"u8);
        if (EqualsIgnoreCase(sql, "BEGIN"u8) || StartsWithIgnoreCase(sql, "XA START "u8) || StartsWithIgnoreCase(sql, "XA BEGIN "u8))
        {
            return QueryKind.Begin;
        }

        return EqualsIgnoreCase(sql, "COMMIT"u8) || EqualsIgnoreCase(sql, "ROLLBACK"u8)
            || StartsWithIgnoreCase(sql, "XA COMMIT "u8) || StartsWithIgnoreCase(sql, "XA ROLLBACK "u8)
            ? QueryKind.End
            : QueryKind.Other;
    }

    private void MergeGtidList(ReadOnlySpan<byte> body)
    {
        if (body.Length < 4)
        {
            return;
        }

        var count = (int)(BinaryPrimitives.ReadUInt32LittleEndian(body) & 0x0FFF_FFFF);
        if (body.Length < 4 + ((long)count * 16))
        {
            throw new ReplicationProtocolException($"GTID_LIST event announces {count} GTIDs but has {body.Length} bytes.");
        }

        // Unknown state: the list (sent at the start of every file, before any transaction) is the full
        // binlog state. Known state: keep the higher sequence per domain, so the list at the start of the
        // first file of a GTID start does not move the state backwards.
        var adopt = _mariaDbState is null;
        _mariaDbState ??= [];
        for (var i = 0; i < count; i++)
        {
            var entry = body.Slice(4 + (i * 16), 16);
            var gtid = new MariaDbGtid(
                BinaryPrimitives.ReadUInt32LittleEndian(entry),
                BinaryPrimitives.ReadUInt32LittleEndian(entry[4..]),
                BinaryPrimitives.ReadUInt64LittleEndian(entry[8..]));
            if (!_mariaDbState.TryGetValue(gtid.DomainId, out var current)
                || gtid.SequenceNumber > current.SequenceNumber
                || (adopt && gtid.SequenceNumber == current.SequenceNumber))
            {
                _mariaDbState[gtid.DomainId] = gtid;
            }
        }

        _checkpoint = null;
    }

    private void MergePreviousGtids(ReadOnlySpan<byte> body)
    {
        MySqlGtidSet previous;
        try
        {
            previous = MySqlGtidSet.Decode(body);
        }
        catch (ReplicationProtocolException)
        {
            // Tagged encoding (8.4+): no GTID resume point.
            _mySqlState = null;
            _checkpoint = null;
            return;
        }

        if (_mySqlState is not null)
        {
            _mySqlState.UnionWith(previous);
        }
        else if (_fileFromStart)
        {
            // PREVIOUS_GTIDS is the set before this file; complete only if we read the file from its start.
            _mySqlState = previous;
        }

        _checkpoint = null;
    }

    /// <summary>Parses what the tracker needs from a FORMAT_DESCRIPTION_EVENT.</summary>
    /// <returns>Whether it carries the checksum field, the file's algorithm, and QUERY's post-header length.</returns>
    internal static (bool HasChecksumField, BinlogChecksumAlgorithm Algorithm, int QueryPostHeaderLength) ReadFormatDescription(ReadOnlySpan<byte> eventBytes)
    {
        // Body: binlog_version int<2>, server_version char[50], create_timestamp int<4>,
        // header_length int<1>, post_header_len[...], [checksum_alg int<1>, checksum int<4>].
        const int VersionOffset = BinlogEventHeader.Size + 2;
        const int PostHeaderOffset = BinlogEventHeader.Size + 2 + 50 + 4 + 1;
        if (eventBytes.Length < PostHeaderOffset + 2)
        {
            throw new ReplicationProtocolException($"FORMAT_DESCRIPTION_EVENT of {eventBytes.Length} bytes is too short.");
        }

        var versionField = eventBytes.Slice(VersionOffset, 50);
        var nul = versionField.IndexOf((byte)0);
        var version = ServerVersion.Parse(Encoding.ASCII.GetString(nul < 0 ? versionField : versionField[..nul]));
        var checksumAware = version.IsMariaDb ? version.IsAtLeast(5, 3, 0) : version.IsAtLeast(5, 6, 1);
        var queryPostHeader = eventBytes[PostHeaderOffset + 1];
        if (!checksumAware || eventBytes.Length < PostHeaderOffset + 2 + 5)
        {
            return (false, BinlogChecksumAlgorithm.None, queryPostHeader);
        }

        var algorithm = eventBytes[^5] switch
        {
            0 => BinlogChecksumAlgorithm.None,
            1 => BinlogChecksumAlgorithm.Crc32,
            var other => throw new ReplicationProtocolException($"Unknown binlog checksum algorithm {other} in FORMAT_DESCRIPTION_EVENT."),
        };
        return (true, algorithm, queryPostHeader);
    }

    private static bool EqualsIgnoreCase(ReadOnlySpan<byte> text, ReadOnlySpan<byte> upper) =>
        text.Length == upper.Length && StartsWithIgnoreCase(text, upper);

    private static bool StartsWithIgnoreCase(ReadOnlySpan<byte> text, ReadOnlySpan<byte> upper)
    {
        if (text.Length < upper.Length)
        {
            return false;
        }

        for (var i = 0; i < upper.Length; i++)
        {
            var c = text[i];
            if (c is >= (byte)'a' and <= (byte)'z')
            {
                c -= 0x20;
            }

            if (c != upper[i])
            {
                return false;
            }
        }

        return true;
    }

    private enum QueryKind
    {
        Other,
        Begin,
        End,
    }
}
