using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace KvStore.Cdc.Protocol;

/// <summary>
/// A MySQL GTID set (<c>3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7,...</c>): per source UUID, a list of
/// closed ranges of transaction numbers. Mutable; the tracker hands out clones.
/// </summary>
/// <remarks>Tagged GTIDs (MySQL 8.4+, <c>uuid:tag:1-5</c>) are not supported and fail to parse.</remarks>
internal sealed class MySqlGtidSet
{
    private readonly SortedDictionary<Guid, List<Interval>> _sets = [];

    /// <summary>True when the set holds no transaction.</summary>
    public bool IsEmpty => _sets.Count == 0;

    /// <summary>Source UUIDs and their ranges, as (first, last) inclusive pairs.</summary>
    public IEnumerable<(Guid SourceId, IReadOnlyList<(long First, long Last)> Ranges)> Entries =>
        _sets.Select(pair => (pair.Key, (IReadOnlyList<(long, long)>)pair.Value.Select(i => (i.Start, i.End - 1)).ToList()));

    /// <summary>Parses the text form (whitespace and newlines, as in <c>@@gtid_executed</c>, are ignored).</summary>
    public static MySqlGtidSet Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var set = new MySqlGtidSet();
        foreach (var entry in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var parts = entry.Split(':', StringSplitOptions.TrimEntries);
            if (parts.Length < 2 || !Guid.TryParse(parts[0], out var sourceId))
            {
                throw new FormatException($"'{entry}' is not a MySQL GTID set entry (uuid:first-last[:first-last...]).");
            }

            for (var i = 1; i < parts.Length; i++)
            {
                var range = parts[i];
                var dash = range.IndexOf('-', StringComparison.Ordinal);
                var firstText = dash < 0 ? range : range[..dash];
                var lastText = dash < 0 ? range : range[(dash + 1)..];
                if (!long.TryParse(firstText, NumberStyles.None, CultureInfo.InvariantCulture, out var first)
                    || !long.TryParse(lastText, NumberStyles.None, CultureInfo.InvariantCulture, out var last))
                {
                    throw new FormatException(
                        $"'{range}' in '{entry}' is not a transaction range; tagged GTIDs (uuid:tag:n) are not supported.");
                }

                if (first < 1 || last < first)
                {
                    throw new FormatException($"Invalid GTID range '{range}' in '{entry}'.");
                }

                set.AddRange(sourceId, first, last + 1);
            }
        }

        return set;
    }

    /// <summary>Decodes the binary SID block of COM_BINLOG_DUMP_GTID / PREVIOUS_GTIDS_EVENT.</summary>
    public static MySqlGtidSet Decode(ReadOnlySpan<byte> data)
    {
        var reader = new PayloadReader(data);
        var set = new MySqlGtidSet();
        var sourceCount = reader.ReadUInt64();

        // The high byte of n_sids carries a format marker in 8.4+ (tagged GTIDs).
        if (sourceCount >> 56 != 0)
        {
            throw new ReplicationProtocolException("Tagged GTID set encoding (MySQL 8.4+) is not supported.");
        }

        for (ulong s = 0; s < sourceCount; s++)
        {
            var sourceId = new Guid(reader.ReadBytes(16), bigEndian: true);
            var intervalCount = reader.ReadUInt64();
            for (ulong i = 0; i < intervalCount; i++)
            {
                var start = (long)reader.ReadUInt64();
                var end = (long)reader.ReadUInt64();
                if (start < 1 || end <= start)
                {
                    throw new ReplicationProtocolException($"Invalid GTID interval [{start}, {end}) in a GTID set.");
                }

                set.AddRange(sourceId, start, end);
            }
        }

        return set;
    }

    /// <summary>Adds one transaction.</summary>
    public void Add(Guid sourceId, long transactionNumber)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(transactionNumber, 1);
        AddRange(sourceId, transactionNumber, transactionNumber + 1);
    }

    public bool Contains(Guid sourceId, long transactionNumber) =>
        _sets.TryGetValue(sourceId, out var list) && list.Exists(i => i.Start <= transactionNumber && transactionNumber < i.End);

    public void UnionWith(MySqlGtidSet other)
    {
        ArgumentNullException.ThrowIfNull(other);
        foreach (var (sourceId, list) in other._sets)
        {
            foreach (var interval in list)
            {
                AddRange(sourceId, interval.Start, interval.End);
            }
        }
    }

    public MySqlGtidSet Clone()
    {
        var copy = new MySqlGtidSet();
        copy.UnionWith(this);
        return copy;
    }

    /// <summary>
    /// The binary form: <c>n_sids int&lt;8&gt;</c>, then per source <c>uuid[16]</c> (bytes in text order),
    /// <c>n_intervals int&lt;8&gt;</c> and <c>start int&lt;8&gt;, end int&lt;8&gt;</c> with an exclusive end.
    /// </summary>
    public byte[] Encode()
    {
        var builder = new PayloadBuilder(8 + (_sets.Count * 40));
        builder.WriteUInt64((ulong)_sets.Count);
        Span<byte> uuid = stackalloc byte[16];
        foreach (var (sourceId, list) in _sets)
        {
            sourceId.TryWriteBytes(uuid, bigEndian: true, out _);
            builder.WriteBytes(uuid).WriteUInt64((ulong)list.Count);
            foreach (var interval in list)
            {
                builder.WriteUInt64((ulong)interval.Start).WriteUInt64((ulong)interval.End);
            }
        }

        return builder.ToArray();
    }

    public override string ToString()
    {
        var text = new StringBuilder();
        foreach (var (sourceId, list) in _sets)
        {
            if (text.Length > 0)
            {
                text.Append(',');
            }

            text.Append(sourceId.ToString("D"));
            foreach (var interval in list)
            {
                text.Append(':').Append(interval.Start.ToString(CultureInfo.InvariantCulture));
                if (interval.End - 1 != interval.Start)
                {
                    text.Append('-').Append((interval.End - 1).ToString(CultureInfo.InvariantCulture));
                }
            }
        }

        return text.ToString();
    }

    private void AddRange(Guid sourceId, long start, long end)
    {
        if (!_sets.TryGetValue(sourceId, out var list))
        {
            _sets.Add(sourceId, [new Interval(start, end)]);
            return;
        }

        // Intervals stay sorted and disjoint; merge everything that overlaps or touches [start, end).
        var index = 0;
        while (index < list.Count && list[index].End < start)
        {
            index++;
        }

        var mergedStart = start;
        var mergedEnd = end;
        var removeFrom = index;
        while (index < list.Count && list[index].Start <= end)
        {
            mergedStart = Math.Min(mergedStart, list[index].Start);
            mergedEnd = Math.Max(mergedEnd, list[index].End);
            index++;
        }

        list.RemoveRange(removeFrom, index - removeFrom);
        list.Insert(removeFrom, new Interval(mergedStart, mergedEnd));
    }

    private readonly record struct Interval(long Start, long End);
}
