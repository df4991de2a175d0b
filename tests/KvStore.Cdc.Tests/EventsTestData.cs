using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;
using KvStore.Cdc.Decoding;
using KvStore.Cdc.Events;

namespace KvStore.Cdc.Tests;

/// <summary>Little-endian byte builder for hand-made event bodies.</summary>
internal sealed class Bytes
{
    private readonly List<byte> _bytes = [];

    public int Length => _bytes.Count;

    public Bytes U8(int value)
    {
        _bytes.Add((byte)value);
        return this;
    }

    public Bytes U16(int value) => Raw((byte)value, (byte)(value >> 8));

    public Bytes U24(int value) => Raw((byte)value, (byte)(value >> 8), (byte)(value >> 16));

    public Bytes U32(uint value) => Raw(BitConverter.GetBytes(value));

    public Bytes U48(ulong value) => Raw(BitConverter.GetBytes(value)[..6]);

    public Bytes U64(ulong value) => Raw(BitConverter.GetBytes(value));

    /// <summary>A MySQL packed (length-encoded) integer.</summary>
    public Bytes Packed(ulong value) => value switch
    {
        < 251 => U8((int)value),
        <= 0xFFFF => U8(252).U16((int)value),
        <= 0xFFFFFF => U8(253).U24((int)value),
        _ => U8(254).U64(value),
    };

    public Bytes Raw(params byte[] bytes)
    {
        _bytes.AddRange(bytes);
        return this;
    }

    public Bytes Hex(string hex) => Raw(Convert.FromHexString(hex.Replace(" ", string.Empty, StringComparison.Ordinal)));

    public Bytes Utf8(string text) => Raw(Encoding.UTF8.GetBytes(text));

    /// <summary>A packed length then the UTF-8 bytes.</summary>
    public Bytes PackedString(string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        return Packed((ulong)bytes.Length).Raw(bytes);
    }

    public byte[] ToArray() => [.. _bytes];
}

/// <summary>An action on a row image (a lambda cannot capture the ref struct, but can take it as a parameter).</summary>
internal delegate void ImageAction(RowImage image);

/// <summary>Builds whole events (header, body, optional CRC32) and column descriptions for unit tests.</summary>
internal static class EventsTestData
{
    /// <summary><c>Assert.Throws</c> for row-image getters.</summary>
    public static TException Throws<TException>(RowImage image, ImageAction action)
        where TException : Exception
    {
        try
        {
            action(image);
        }
        catch (TException ex)
        {
            return ex;
        }

        throw new Xunit.Sdk.XunitException($"Expected {typeof(TException).Name}, but nothing was thrown.");
    }

    /// <summary>An event with a correct header and, when <paramref name="crc"/>, a correct CRC32.</summary>
    public static byte[] Event(BinlogEventType type, byte[] body, uint logPosition = 1000, ushort flags = 0, bool crc = true, uint serverId = 1)
    {
        var length = BinlogEventHeader.Size + body.Length + (crc ? 4 : 0);
        var bytes = new byte[length];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, 1_700_000_000);
        bytes[4] = (byte)type;
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(5), serverId);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(9), (uint)length);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(13), logPosition);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(17), flags);
        body.CopyTo(bytes, BinlogEventHeader.Size);
        if (crc)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(length - 4), Crc32.HashToUInt32(bytes.AsSpan(0, length - 4)));
        }

        return bytes;
    }

    /// <summary>Recomputes the CRC32 of an event in place (after editing it).</summary>
    public static byte[] Reseal(byte[] bytes)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(bytes.Length - 4), Crc32.HashToUInt32(bytes.AsSpan(0, bytes.Length - 4)));
        return bytes;
    }

    /// <summary>The FORMAT_DESCRIPTION of the MariaDB 10.11 fixture (CRC32).</summary>
    public static byte[] MariaDbFormatDescription() => FirstEvent("mariadb-10.11-generated/binlogs/mariadb-bin.000001");

    /// <summary>The FORMAT_DESCRIPTION of the MySQL 8.0.28 fixture (CRC32).</summary>
    public static byte[] MySqlFormatDescription() => FirstEvent("rust_mysql_common/mysql-enum-string-set.000001");

    /// <summary>A parser that has seen a MariaDB (or MySQL) CRC32 FORMAT_DESCRIPTION.</summary>
    public static BinlogEventParser Parser(bool mariaDb = true)
    {
        var parser = new BinlogEventParser();
        parser.Parse(mariaDb ? MariaDbFormatDescription() : MySqlFormatDescription());
        return parser;
    }

    /// <summary>A TABLE_MAP body.</summary>
    public static byte[] TableMapBody(ulong tableId, string database, string table, byte[] types, byte[] metadata, byte[]? nullBitmap = null, byte[]? optional = null)
    {
        var body = new Bytes().U48(tableId).U16(1)
            .U8(Encoding.UTF8.GetByteCount(database)).Utf8(database).U8(0)
            .U8(Encoding.UTF8.GetByteCount(table)).Utf8(table).U8(0)
            .Packed((ulong)types.Length).Raw(types)
            .Packed((ulong)metadata.Length).Raw(metadata)
            .Raw(nullBitmap ?? new byte[(types.Length + 7) / 8]);
        if (optional is not null)
        {
            body.Raw(optional);
        }

        return body.ToArray();
    }

    /// <summary>A WRITE_ROWS_V1 body (all columns present) followed by <paramref name="rows"/> (each: null bitmap + values).</summary>
    public static byte[] WriteRowsBody(ulong tableId, int columnCount, byte[] rows, ushort flags = 1)
    {
        var present = Enumerable.Repeat((byte)0xFF, (columnCount + 7) / 8).ToArray();
        return new Bytes().U48(tableId).U16(flags).Packed((ulong)columnCount).Raw(present).Raw(rows).ToArray();
    }

    /// <summary>A column as the TABLE_MAP parser would create it, for decoder unit tests.</summary>
    public static TableColumn Column(ColumnType type, int metadata = 0, int collation = 0, bool unsigned = false, IReadOnlyList<string>? values = null)
    {
        var decoder = ColumnDecoders.Find(type) ?? throw new ArgumentException($"No decoder for {type}.", nameof(type));
        var resolved = decoder.Resolve(type, metadata, out var realType, out var length, out var scale);
        return new TableColumn(0, type, realType, metadata, length, isNullable: true, resolved)
        {
            Scale = scale,
            IsUnsigned = unsigned,
            CollationId = collation,
            EnumOrSetValues = values,
            QualifiedName = "db.t.c",
        };
    }

    /// <summary>Every event of a fixture file, parsed in order.</summary>
    public static List<(BinlogFileEvent Raw, BinlogEvent Event)> ParseFile(string relativePath, BinlogParserOptions? options = null)
    {
        var parser = new BinlogEventParser(options);
        return BinlogFileReader.ReadAll(Fixtures.Path(relativePath)).Select(raw => (raw, parser.Parse(raw.Bytes))).ToList();
    }

    /// <summary>The events of type <typeparamref name="T"/> in a fixture file.</summary>
    public static List<T> EventsOf<T>(string relativePath)
        where T : BinlogEvent => ParseFile(relativePath).Select(e => e.Event).OfType<T>().ToList();

    private static byte[] FirstEvent(string relativePath) =>
        BinlogFileReader.ReadAll(Fixtures.Path(relativePath)).First().Bytes.ToArray();
}
