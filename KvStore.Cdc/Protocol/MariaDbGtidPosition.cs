namespace KvStore.Cdc.Protocol;

/// <summary>
/// A MariaDB GTID position: the last applied GTID of each replication domain, as used by
/// <c>@slave_connect_state</c> and shown by <c>@@gtid_binlog_pos</c> (<c>0-1-42,1-2-7</c>). Immutable.
/// </summary>
internal sealed class MariaDbGtidPosition : IEquatable<MariaDbGtidPosition>
{
    public static readonly MariaDbGtidPosition Empty = new([]);

    private readonly MariaDbGtid[] _gtids;

    private MariaDbGtidPosition(MariaDbGtid[] gtids)
    {
        _gtids = gtids;
    }

    /// <summary>One GTID per domain, ordered by domain id.</summary>
    public IReadOnlyList<MariaDbGtid> Gtids => _gtids;

    public bool IsEmpty => _gtids.Length == 0;

    /// <summary>Parses <c>D-S-N[,D-S-N...]</c>; whitespace is ignored and an empty string is the empty position.</summary>
    public static MariaDbGtidPosition Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var byDomain = new SortedDictionary<uint, MariaDbGtid>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var gtid = MariaDbGtid.Parse(part);
            if (!byDomain.TryAdd(gtid.DomainId, gtid))
            {
                throw new FormatException($"MariaDB GTID position '{text}' names domain {gtid.DomainId} twice.");
            }
        }

        return new MariaDbGtidPosition([.. byDomain.Values]);
    }

    /// <summary>Builds a position from one GTID per domain (the last one wins for a repeated domain).</summary>
    public static MariaDbGtidPosition FromGtids(IEnumerable<MariaDbGtid> gtids)
    {
        ArgumentNullException.ThrowIfNull(gtids);
        var byDomain = new SortedDictionary<uint, MariaDbGtid>();
        foreach (var gtid in gtids)
        {
            byDomain[gtid.DomainId] = gtid;
        }

        return new MariaDbGtidPosition([.. byDomain.Values]);
    }

    /// <summary>This position with <paramref name="gtid"/> as its domain's last GTID.</summary>
    public MariaDbGtidPosition With(MariaDbGtid gtid) => FromGtids(_gtids.Append(gtid));

    public override string ToString() => string.Join(',', _gtids);

    public bool Equals(MariaDbGtidPosition? other) => other is not null && _gtids.AsSpan().SequenceEqual(other._gtids);

    public override bool Equals(object? obj) => Equals(obj as MariaDbGtidPosition);

    public override int GetHashCode()
    {
        var hash = default(HashCode);
        foreach (var gtid in _gtids)
        {
            hash.Add(gtid);
        }

        return hash.ToHashCode();
    }
}
