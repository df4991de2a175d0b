using System.Globalization;

namespace KvStore.Cdc.Protocol;

/// <summary>A MariaDB GTID, written <c>domain-server-sequence</c>.</summary>
internal readonly record struct MariaDbGtid(uint DomainId, uint ServerId, ulong SequenceNumber)
{
    public static MariaDbGtid Parse(ReadOnlySpan<char> text)
    {
        if (!TryParse(text, out var gtid))
        {
            throw new FormatException($"'{text}' is not a MariaDB GTID (domain-server-sequence, e.g. 0-1-42).");
        }

        return gtid;
    }

    public static bool TryParse(ReadOnlySpan<char> text, out MariaDbGtid gtid)
    {
        gtid = default;
        text = text.Trim();
        var first = text.IndexOf('-');
        if (first <= 0)
        {
            return false;
        }

        var second = text[(first + 1)..].IndexOf('-');
        if (second <= 0)
        {
            return false;
        }

        second += first + 1;
        if (!uint.TryParse(text[..first], NumberStyles.None, CultureInfo.InvariantCulture, out var domain)
            || !uint.TryParse(text[(first + 1)..second], NumberStyles.None, CultureInfo.InvariantCulture, out var server)
            || !ulong.TryParse(text[(second + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var sequence))
        {
            return false;
        }

        gtid = new MariaDbGtid(domain, server, sequence);
        return true;
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{DomainId}-{ServerId}-{SequenceNumber}");
}
