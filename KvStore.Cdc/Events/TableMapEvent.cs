using System.Text;
using KvStore.Cdc.Decoding;

namespace KvStore.Cdc.Events;

/// <summary>
/// TABLE_MAP_EVENT (19): binds a table id to a table and its column types; the ROWS events that follow
/// refer to it by id. Column names, signedness, charsets and the key come from the optional metadata
/// the server writes with <c>binlog_row_metadata=FULL</c> (MINIMAL gives everything but names and ENUM/SET values).
/// </summary>
internal sealed class TableMapEvent : BinlogEvent
{
    internal TableMapEvent(BinlogEventHeader header, TableDefinition definition)
        : base(header)
    {
        Definition = definition;
    }

    /// <summary>Server-assigned id; not stable across DDL or restarts.</summary>
    public ulong TableId => Definition.TableId;

    /// <summary>Schema (database) name.</summary>
    public string DatabaseName => Definition.DatabaseName;

    /// <summary>Table name.</summary>
    public string TableName => Definition.TableName;

    /// <summary>TABLE_MAP flags (TM_BIT_LEN_EXACT_F and server-specific bits); not needed for decoding.</summary>
    public ushort Flags => Definition.Flags;

    /// <summary>Number of columns.</summary>
    public int ColumnCount => Definition.Columns.Length;

    /// <summary>The columns, in table order.</summary>
    public IReadOnlyList<TableColumn> Columns => Definition.Columns;

    /// <summary>Column names in table order, or null when the server logs no names (<c>binlog_row_metadata</c> is not FULL).</summary>
    public IReadOnlyList<string>? ColumnNames => Definition.ColumnNames;

    /// <summary>Primary-key column ordinals in key order; empty when unknown or the table has none.</summary>
    public IReadOnlyList<int> PrimaryKey => Definition.PrimaryKey;

    /// <summary>True when SIGNEDNESS metadata was present, so <see cref="TableColumn.IsUnsigned"/> is reliable.</summary>
    public bool HasSignedness => Definition.HasSignedness;

    /// <summary>
    /// Null when every column can be decoded; otherwise why not (an unknown column type, naming the type id and
    /// column). Reading rows of such a table throws <see cref="BinlogFormatException"/> with this message.
    /// </summary>
    public string? DecodeError => Definition.DecodeError;

    /// <summary>The shared, immutable description; identical TABLE_MAPs reuse one instance.</summary>
    internal TableDefinition Definition { get; }

    /// <summary>Ordinal of the column named <paramref name="name"/> (case-insensitive, like MySQL), or -1 (also when names are not logged).</summary>
    public int IndexOf(string name) => Definition.IndexOf(name);

    /// <inheritdoc/>
    public override string ToString() => $"TABLE_MAP {DatabaseName}.{TableName} id {TableId} (log_pos {Header.LogPosition})";
}

/// <summary>Everything a TABLE_MAP body says, parsed once; cached by the parser and compared byte-for-byte for reuse.</summary>
internal sealed class TableDefinition
{
    private const byte Signedness = 1, DefaultCharset = 2, ColumnCharset = 3, ColumnName = 4, SetStrValue = 5, EnumStrValue = 6;
    private const byte GeometryType = 7, SimplePrimaryKey = 8, PrimaryKeyWithPrefix = 9, EnumAndSetDefaultCharset = 10;
    private const byte EnumAndSetColumnCharset = 11, ColumnVisibility = 12;

    private Dictionary<string, int>? _byName;

    private TableDefinition(byte[] rawBody, ulong tableId, ushort flags, string databaseName, string tableName, TableColumn[] columns)
    {
        RawBody = rawBody;
        TableId = tableId;
        Flags = flags;
        DatabaseName = databaseName;
        TableName = tableName;
        Columns = columns;
    }

    public byte[] RawBody { get; }

    public ulong TableId { get; }

    public ushort Flags { get; }

    public string DatabaseName { get; }

    public string TableName { get; }

    public TableColumn[] Columns { get; }

    public string[]? ColumnNames { get; private set; }

    public int[] PrimaryKey { get; private set; } = [];

    public bool HasSignedness { get; private set; }

    public string? DecodeError { get; private set; }

    public int IndexOf(string name)
    {
        if (ColumnNames is null)
        {
            return -1;
        }

        if (_byName is null)
        {
            var map = new Dictionary<string, int>(ColumnNames.Length, StringComparer.OrdinalIgnoreCase);
            for (var i = 0; i < ColumnNames.Length; i++)
            {
                map.TryAdd(ColumnNames[i], i);
            }

            _byName = map;
        }

        return _byName.TryGetValue(name, out var index) ? index : -1;
    }

    /// <summary>Parses a TABLE_MAP body (without header and checksum).</summary>
    public static TableDefinition Parse(ReadOnlySpan<byte> body, int postHeaderLength, bool mariaDb)
    {
        var reader = new BodyReader(body);
        var tableId = postHeaderLength == 6 ? reader.ReadUInt32() : reader.ReadUInt48();
        var flags = reader.ReadUInt16();
        reader.Skip(Math.Max(0, postHeaderLength - 8));
        var database = reader.ReadUtf8(reader.ReadByte());
        reader.Skip(1);
        var table = reader.ReadUtf8(reader.ReadByte());
        reader.Skip(1);
        var columnCount = reader.ReadPackedLength();
        var types = reader.ReadBytes(columnCount);
        var metadata = reader.ReadBytes(reader.ReadPackedLength());
        var nullBitmap = reader.ReadBytes((columnCount + 7) / 8);
        var optional = reader.ReadToEnd();

        var columns = new TableColumn[columnCount];
        var unsupported = BuildColumns(database, table, types, metadata, nullBitmap, columns);
        var definition = new TableDefinition(body.ToArray(), tableId, flags, database, table, columns);
        definition.ReadOptionalMetadata(optional, mariaDb, typesKnown: unsupported < 0);
        foreach (var column in columns)
        {
            column.QualifiedName = $"{database}.{table}.{column.Name ?? "@" + (column.Ordinal + 1)}";
        }

        if (unsupported >= 0)
        {
            var column = columns[unsupported];
            definition.DecodeError =
                $"Column {column.QualifiedName} has column type {(int)column.WireType}, which this decoder does not support; rows of this table cannot be read.";
        }

        return definition;
    }

    /// <summary>Creates the columns; returns the ordinal of the first column with an unknown type, or -1.</summary>
    private static int BuildColumns(
        string database, string table, ReadOnlySpan<byte> types, ReadOnlySpan<byte> metadata, ReadOnlySpan<byte> nullBitmap, TableColumn[] columns)
    {
        var unsupported = -1;
        var position = 0;
        for (var i = 0; i < columns.Length; i++)
        {
            var wireType = (ColumnType)types[i];
            var nullable = (nullBitmap[i / 8] & (1 << (i % 8))) != 0;
            var decoder = unsupported < 0 ? ColumnDecoders.Find(wireType) : null;
            if (decoder is null)
            {
                // After an unknown type the metadata of later columns cannot be located either.
                unsupported = unsupported < 0 ? i : unsupported;
                columns[i] = new TableColumn(i, wireType, wireType, 0, 0, nullable, new UnsupportedColumnDecoder((int)wireType));
                continue;
            }

            if (position + decoder.MetadataSize > metadata.Length)
            {
                throw new BinlogFormatException($"TABLE_MAP of {database}.{table}: column metadata ends at column @{i + 1}.");
            }

            var meta = decoder.ReadMetadata(metadata.Slice(position, decoder.MetadataSize));
            position += decoder.MetadataSize;
            var resolved = decoder.Resolve(wireType, meta, out var type, out var length, out var scale);
            columns[i] = new TableColumn(i, wireType, type, meta, length, nullable, resolved) { Scale = scale };
        }

        if (unsupported < 0 && position != metadata.Length)
        {
            throw new BinlogFormatException(
                $"TABLE_MAP of {database}.{table}: column metadata is {metadata.Length} bytes but the column types use {position}.");
        }

        return unsupported;
    }

    private void ReadOptionalMetadata(ReadOnlySpan<byte> optional, bool mariaDb, bool typesKnown)
    {
        var reader = new BodyReader(optional);
        while (!reader.IsEmpty)
        {
            var fieldType = reader.ReadByte();
            var value = reader.ReadPackedBytes();
            switch (fieldType)
            {
                case ColumnName:
                    ReadColumnNames(value);
                    break;
                case SimplePrimaryKey:
                    ReadPrimaryKey(value, withPrefix: false);
                    break;
                case PrimaryKeyWithPrefix:
                    ReadPrimaryKey(value, withPrefix: true);
                    break;
                case ColumnVisibility:
                    ReadVisibility(value);
                    break;
                case Signedness when typesKnown:
                    ReadSignedness(value);
                    break;
                case DefaultCharset when typesKnown:
                    ReadDefaultCharset(value, c => c.IsCharacter(mariaDb));
                    break;
                case ColumnCharset when typesKnown:
                    ReadColumnCharsets(value, c => c.IsCharacter(mariaDb));
                    break;
                case EnumAndSetDefaultCharset when typesKnown:
                    ReadDefaultCharset(value, c => c.IsEnumOrSet);
                    break;
                case EnumAndSetColumnCharset when typesKnown:
                    ReadColumnCharsets(value, c => c.IsEnumOrSet);
                    break;
                case SetStrValue when typesKnown:
                    ReadValueNames(value, ColumnType.Set);
                    break;
                case EnumStrValue when typesKnown:
                    ReadValueNames(value, ColumnType.Enum);
                    break;
                case GeometryType when typesKnown:
                    ReadGeometryTypes(value);
                    break;
                default:
                    // Unknown (newer) metadata types are skipped by their length.
                    break;
            }
        }
    }

    private void ReadSignedness(ReadOnlySpan<byte> bitmap)
    {
        var bit = 0;
        foreach (var column in Columns)
        {
            if (!column.IsNumeric)
            {
                continue;
            }

            // One bit per numeric column, most significant bit first.
            column.IsUnsigned = bit / 8 < bitmap.Length && (bitmap[bit / 8] & (0x80 >> (bit % 8))) != 0;
            bit++;
        }

        HasSignedness = true;
    }

    private void ReadDefaultCharset(ReadOnlySpan<byte> value, Func<TableColumn, bool> include)
    {
        var reader = new BodyReader(value);
        var defaultCollation = reader.ReadPackedLength();
        var selected = Columns.Where(include).ToArray();
        foreach (var column in selected)
        {
            column.CollationId = defaultCollation;
        }

        // Exceptions to the default: (index among the selected columns, collation) pairs.
        while (!reader.IsEmpty)
        {
            var index = reader.ReadPackedLength();
            var collation = reader.ReadPackedLength();
            if (index >= selected.Length)
            {
                throw new BinlogFormatException($"TABLE_MAP of {DatabaseName}.{TableName}: charset metadata names character column {index} of {selected.Length}.");
            }

            selected[index].CollationId = collation;
        }
    }

    private void ReadColumnCharsets(ReadOnlySpan<byte> value, Func<TableColumn, bool> include)
    {
        var reader = new BodyReader(value);
        foreach (var column in Columns)
        {
            if (include(column) && !reader.IsEmpty)
            {
                column.CollationId = reader.ReadPackedLength();
            }
        }
    }

    private void ReadColumnNames(ReadOnlySpan<byte> value)
    {
        var reader = new BodyReader(value);
        var names = new string[Columns.Length];
        for (var i = 0; i < names.Length; i++)
        {
            names[i] = Encoding.UTF8.GetString(reader.ReadPackedBytes());
            Columns[i].Name = names[i];
        }

        ColumnNames = names;
    }

    private void ReadValueNames(ReadOnlySpan<byte> value, ColumnType type)
    {
        var reader = new BodyReader(value);
        foreach (var column in Columns)
        {
            if (column.Type != type || reader.IsEmpty)
            {
                continue;
            }

            var count = reader.ReadPackedLength();
            var names = new string[count];
            for (var i = 0; i < count; i++)
            {
                names[i] = Encoding.UTF8.GetString(reader.ReadPackedBytes());
            }

            column.EnumOrSetValues = names;
        }
    }

    private void ReadGeometryTypes(ReadOnlySpan<byte> value)
    {
        var reader = new BodyReader(value);
        foreach (var column in Columns)
        {
            if (column.Type == ColumnType.Geometry && !reader.IsEmpty)
            {
                column.GeometryType = reader.ReadPackedLength();
            }
        }
    }

    private void ReadPrimaryKey(ReadOnlySpan<byte> value, bool withPrefix)
    {
        var reader = new BodyReader(value);
        var key = new List<int>();
        while (!reader.IsEmpty)
        {
            var ordinal = reader.ReadPackedLength();
            var prefix = withPrefix ? reader.ReadPackedLength() : 0;
            if (ordinal >= Columns.Length)
            {
                throw new BinlogFormatException($"TABLE_MAP of {DatabaseName}.{TableName}: primary key names column {ordinal} of {Columns.Length}.");
            }

            Columns[ordinal].IsPrimaryKey = true;
            Columns[ordinal].PrimaryKeyPrefixLength = prefix;
            key.Add(ordinal);
        }

        PrimaryKey = [.. key];
    }

    private void ReadVisibility(ReadOnlySpan<byte> bitmap)
    {
        for (var i = 0; i < Columns.Length && i / 8 < bitmap.Length; i++)
        {
            Columns[i].IsVisible = (bitmap[i / 8] & (0x80 >> (i % 8))) != 0;
        }
    }
}

/// <summary>Stands in for a column whose type id has no decoder; any attempt to read it fails naming the type.</summary>
internal sealed class UnsupportedColumnDecoder : ColumnDecoder
{
    private readonly int _typeId;

    public UnsupportedColumnDecoder(int typeId)
        : base($"type {typeId}", 0)
    {
        _typeId = typeId;
    }

    public override int GetLength(ReadOnlySpan<byte> data, TableColumn column) => throw Fail(column);

    public override string GetString(ReadOnlySpan<byte> value, TableColumn column) => throw Fail(column);

    public override object GetValue(ReadOnlySpan<byte> value, TableColumn column) => throw Fail(column);

    private BinlogFormatException Fail(TableColumn column) =>
        new(BinlogErrorCode.UnknownColumnType, $"Column {column.QualifiedName} has column type {_typeId}, which this decoder does not support.");
}
