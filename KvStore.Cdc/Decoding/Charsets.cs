using System.Text;

namespace KvStore.Cdc.Decoding;

/// <summary>
/// Maps the collation ids of TABLE_MAP charset metadata to .NET encodings. Only the character sets a
/// KV schema realistically uses are mapped; anything else decodes as UTF-8, which is right for
/// utf8mb3/utf8mb4/ascii and the reason to require <c>binlog_row_metadata=FULL</c> on the server.
/// </summary>
internal static class Charsets
{
    /// <summary>Collation id 63: <c>binary</c> (BLOB, VARBINARY, BINARY columns).</summary>
    public const int Binary = 63;

    private static readonly Encoding Utf16BigEndian = new UnicodeEncoding(bigEndian: true, byteOrderMark: false);
    private static readonly Encoding Utf32BigEndian = new UTF32Encoding(bigEndian: true, byteOrderMark: false);

    /// <summary>Encoding for text columns with collation <paramref name="collationId"/> (0 = unknown, decoded as UTF-8).</summary>
    public static Encoding GetEncoding(int collationId)
    {
        // MariaDB's NO PAD collations are the PAD SPACE id + 1024 within the same character set.
        var id = collationId is >= 1024 and < 2048 ? collationId - 1024 : collationId;
        return id switch
        {
            5 or 8 or 15 or 31 or 47 or 48 or 49 or 94 => Encoding.Latin1,
            35 or 90 or (>= 128 and <= 151) or 159 => Utf16BigEndian, // ucs2
            54 or 55 or (>= 101 and <= 124) => Utf16BigEndian, // utf16
            56 or 62 => Encoding.Unicode, // utf16le
            60 or 61 or (>= 160 and <= 183) => Utf32BigEndian, // utf32
            _ => Encoding.UTF8,
        };
    }
}
