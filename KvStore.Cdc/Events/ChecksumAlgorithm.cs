namespace KvStore.Cdc.Events;

/// <summary>Binlog checksum algorithm, as stored in the FORMAT_DESCRIPTION event (<c>binlog_checksum</c>).</summary>
internal enum ChecksumAlgorithm : byte
{
    /// <summary>No checksum: events end with their body.</summary>
    None = 0,

    /// <summary>Every event ends with a 4-byte little-endian CRC32 (IEEE) of all preceding bytes.</summary>
    Crc32 = 1,

    /// <summary>Not known yet (no FORMAT_DESCRIPTION seen and none configured).</summary>
    Unknown = 255,
}
