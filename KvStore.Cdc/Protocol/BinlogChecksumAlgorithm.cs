namespace KvStore.Cdc.Protocol;

/// <summary>Binlog checksum algorithm, as in the FORMAT_DESCRIPTION_EVENT's <c>checksum_alg</c> byte.</summary>
internal enum BinlogChecksumAlgorithm : byte
{
    None = 0,
    Crc32 = 1,
}
