using System.Text;
using KvStore.Cdc.Decoding;

namespace KvStore.Cdc.Events;

/// <summary>
/// One column of a TABLE_MAP: its wire type and metadata plus whatever the optional metadata
/// (<c>binlog_row_metadata=MINIMAL|FULL</c>) told us: signedness, collation, name, ENUM/SET values, key.
/// Built once per distinct TABLE_MAP and shared by every event that uses it.
/// </summary>
internal sealed class TableColumn
{
    private Encoding? _encoding;

    internal TableColumn(int ordinal, ColumnType wireType, ColumnType type, int metadata, int length, bool isNullable, ColumnDecoder decoder)
    {
        Ordinal = ordinal;
        WireType = wireType;
        Type = type;
        Metadata = metadata;
        Length = length;
        IsNullable = isNullable;
        Decoder = decoder;
    }

    /// <summary>Zero-based position in the table (and in row images).</summary>
    public int Ordinal { get; }

    /// <summary>The type byte written in the TABLE_MAP (ENUM and SET columns appear as <see cref="ColumnType.String"/>).</summary>
    public ColumnType WireType { get; }

    /// <summary>The real type: <see cref="ColumnType.Enum"/>/<see cref="ColumnType.Set"/> resolved from STRING metadata.</summary>
    public ColumnType Type { get; }

    /// <summary>The column metadata as one number, the way <c>mariadb-binlog -vv</c> prints it (<c>meta=</c>).</summary>
    public int Metadata { get; }

    /// <summary>
    /// The type-specific size derived from the metadata: maximum byte length for VARCHAR/CHAR, length-prefix
    /// bytes for BLOB/TEXT/JSON/GEOMETRY, fractional-second digits for temporal types, pack length for ENUM/SET,
    /// bit count for BIT, precision for DECIMAL.
    /// </summary>
    public int Length { get; }

    /// <summary>DECIMAL scale (digits after the point); 0 for other types.</summary>
    public int Scale { get; internal init; }

    /// <summary>From the TABLE_MAP null bitmap.</summary>
    public bool IsNullable { get; }

    /// <summary>UNSIGNED, from SIGNEDNESS metadata. False when the server logged no signedness (then integers read as signed).</summary>
    public bool IsUnsigned { get; internal set; }

    /// <summary>Collation id from DEFAULT_CHARSET/COLUMN_CHARSET metadata (ENUM/SET: their own charset fields); 0 when unknown.</summary>
    public int CollationId { get; internal set; }

    /// <summary>Column name from COLUMN_NAME metadata (<c>binlog_row_metadata=FULL</c>); null when not logged.</summary>
    public string? Name { get; internal set; }

    /// <summary>The ENUM or SET member names, in definition order; null for other columns or when not logged.</summary>
    public IReadOnlyList<string>? EnumOrSetValues { get; internal set; }

    /// <summary>False for MySQL INVISIBLE columns (they are still present in row images).</summary>
    public bool IsVisible { get; internal set; } = true;

    /// <summary>Part of the primary key (SIMPLE_PRIMARY_KEY or PRIMARY_KEY_WITH_PREFIX metadata).</summary>
    public bool IsPrimaryKey { get; internal set; }

    /// <summary>Key prefix length in characters for PRIMARY_KEY_WITH_PREFIX, 0 for the whole column.</summary>
    public int PrimaryKeyPrefixLength { get; internal set; }

    /// <summary>GEOMETRY subtype from GEOMETRY_TYPE metadata, or null.</summary>
    public int? GeometryType { get; internal set; }

    /// <summary>True for a known binary collation (63): VARBINARY, BINARY, BLOB.</summary>
    public bool IsBinary => CollationId == Charsets.Binary;

    /// <summary>Decodes this column's values in row images.</summary>
    internal ColumnDecoder Decoder { get; }

    /// <summary>"db.table.column" (or "db.table.@N"), for error messages.</summary>
    internal string QualifiedName { get; set; } = string.Empty;

    /// <summary>Encoding of text values; UTF-8 when the collation is unknown.</summary>
    internal Encoding TextEncoding => _encoding ??= Charsets.GetEncoding(CollationId);

    /// <summary>Numeric column in the sense of SIGNEDNESS metadata (one bit per such column).</summary>
    internal bool IsNumeric => Type is ColumnType.Tiny or ColumnType.Short or ColumnType.Int24 or ColumnType.Long
        or ColumnType.LongLong or ColumnType.NewDecimal or ColumnType.Float or ColumnType.Double;

    /// <summary>Character column in the sense of DEFAULT_CHARSET/COLUMN_CHARSET metadata (MariaDB also counts GEOMETRY).</summary>
    internal bool IsCharacter(bool mariaDb) => Type switch
    {
        ColumnType.String or ColumnType.VarString or ColumnType.VarChar => true,
        ColumnType.Blob or ColumnType.TinyBlob or ColumnType.MediumBlob or ColumnType.LongBlob => true,
        ColumnType.Geometry => mariaDb,
        _ => false,
    };

    /// <summary>ENUM or SET column (they have their own charset and value-list metadata).</summary>
    internal bool IsEnumOrSet => Type is ColumnType.Enum or ColumnType.Set;

    /// <inheritdoc/>
    public override string ToString() => $"{Name ?? "@" + (Ordinal + 1)} {Decoder.Name}(meta={Metadata})";
}
