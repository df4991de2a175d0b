namespace KvStore.Cdc.Events;

/// <summary>The bytes are not a valid binlog event (bad length, bad checksum, unknown column type...).</summary>
internal sealed class BinlogFormatException : Exception
{
    public BinlogFormatException(string message)
        : base(message)
    {
    }

    public BinlogFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
