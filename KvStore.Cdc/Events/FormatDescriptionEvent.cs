using System.Text;

namespace KvStore.Cdc.Events;

/// <summary>FORMAT_DESCRIPTION_EVENT (15): the first event of every binlog file; says how to read the rest.</summary>
internal sealed class FormatDescriptionEvent : BinlogEvent
{
    private readonly byte[] _postHeaderLengths;

    internal FormatDescriptionEvent(
        BinlogEventHeader header,
        ushort binlogVersion,
        string serverVersion,
        uint createTimestamp,
        byte headerLength,
        byte[] postHeaderLengths,
        ChecksumAlgorithm checksumAlgorithm)
        : base(header)
    {
        BinlogVersion = binlogVersion;
        ServerVersion = serverVersion;
        CreateTimestamp = createTimestamp;
        HeaderLength = headerLength;
        _postHeaderLengths = postHeaderLengths;
        ChecksumAlgorithm = checksumAlgorithm;
        IsMariaDb = serverVersion.Contains("MariaDB", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>Binlog format version (4 for every server this library supports).</summary>
    public ushort BinlogVersion { get; }

    /// <summary>Server version string, e.g. <c>10.11.19-MariaDB-0+deb12u1-log</c> or <c>8.0.40</c>.</summary>
    public string ServerVersion { get; }

    /// <summary>Non-zero when the file was the first one written after server start-up.</summary>
    public uint CreateTimestamp { get; }

    /// <summary>Common header length (19).</summary>
    public byte HeaderLength { get; }

    /// <summary>Checksum algorithm of the following events in this file/stream.</summary>
    public ChecksumAlgorithm ChecksumAlgorithm { get; }

    /// <summary>True for MariaDB servers (affects optional-metadata details and GTID events).</summary>
    public bool IsMariaDb { get; }

    /// <summary>Post-header length the server uses for <paramref name="type"/> (0 when not listed).</summary>
    public int GetPostHeaderLength(BinlogEventType type)
    {
        var index = (int)type - 1;
        return index >= 0 && index < _postHeaderLengths.Length ? _postHeaderLengths[index] : 0;
    }

    /// <summary>Number of event types the post-header table covers.</summary>
    public int PostHeaderLengthCount => _postHeaderLengths.Length;

    /// <summary>Servers from MySQL 5.6.1 and MariaDB 5.3 append the checksum algorithm byte (and a CRC) to the FDE.</summary>
    internal static bool IsChecksumAware(string serverVersion)
    {
        var (major, minor, patch) = ParseVersion(serverVersion);
        var mariaDb = serverVersion.Contains("MariaDB", StringComparison.OrdinalIgnoreCase);
        return mariaDb
            ? major > 5 || (major == 5 && minor >= 3)
            : major > 5 || (major == 5 && (minor > 6 || (minor == 6 && patch >= 1)));
    }

    internal static string ReadServerVersion(ReadOnlySpan<byte> field)
    {
        var end = field.IndexOf((byte)0);
        return Encoding.ASCII.GetString(end < 0 ? field : field[..end]);
    }

    private static (int Major, int Minor, int Patch) ParseVersion(string version)
    {
        Span<int> parts = stackalloc int[3];
        var part = 0;
        var digits = 0;
        foreach (var c in version)
        {
            if (c is >= '0' and <= '9')
            {
                parts[part] = (parts[part] * 10) + (c - '0');
                digits++;
            }
            else if (c == '.' && digits > 0 && part < 2)
            {
                part++;
                digits = 0;
            }
            else
            {
                break;
            }
        }

        return (parts[0], parts[1], parts[2]);
    }
}
