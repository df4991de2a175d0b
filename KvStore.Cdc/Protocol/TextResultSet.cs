namespace KvStore.Cdc.Protocol;

/// <summary>A small, fully read text-protocol result set (the few SHOW/SELECT statements of session setup).</summary>
internal sealed class TextResultSet
{
    public static readonly TextResultSet Empty = new([], []);

    public TextResultSet(IReadOnlyList<string> columns, IReadOnlyList<string?[]> rows)
    {
        Columns = columns;
        Rows = rows;
    }

    public IReadOnlyList<string> Columns { get; }

    /// <summary>Rows of text values; <see langword="null"/> is SQL NULL.</summary>
    public IReadOnlyList<string?[]> Rows { get; }

    /// <summary>Index of a column by name (case-insensitive), or -1.</summary>
    public int IndexOf(string column)
    {
        for (var i = 0; i < Columns.Count; i++)
        {
            if (string.Equals(Columns[i], column, StringComparison.OrdinalIgnoreCase))
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>The value of <paramref name="column"/> in row <paramref name="row"/>; null when absent.</summary>
    public string? Get(int row, string column)
    {
        var index = IndexOf(column);
        return index < 0 || row >= Rows.Count ? null : Rows[row][index];
    }
}
