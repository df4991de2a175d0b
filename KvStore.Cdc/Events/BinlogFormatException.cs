namespace KvStore.Cdc.Events;

/// <summary>The bytes are not a valid binlog event (bad length, bad checksum, unknown column type...).</summary>
internal sealed class BinlogFormatException : Exception
{
    public BinlogFormatException(string message)
        : this(BinlogErrorCode.Malformed, message)
    {
    }

    public BinlogFormatException(string message, Exception innerException)
        : this(BinlogErrorCode.Malformed, message, innerException)
    {
    }

    public BinlogFormatException(BinlogErrorCode code, string message)
        : base(message)
    {
        Code = code;
    }

    public BinlogFormatException(BinlogErrorCode code, string message, Exception? innerException)
        : base(message, innerException)
    {
        Code = code;
    }

    /// <summary>Stable classification of the failure, for callers that react differently (e.g. resnapshot vs. reconfigure the server).</summary>
    public BinlogErrorCode Code { get; }
}

/// <summary>Why a binlog event could not be decoded.</summary>
internal enum BinlogErrorCode
{
    /// <summary>The event is truncated or internally inconsistent.</summary>
    Malformed = 1,

    /// <summary>The CRC32 stored in the event does not match its bytes: the stream or file is corrupted.</summary>
    ChecksumMismatch = 2,

    /// <summary>A ROWS event refers to a table id for which no TABLE_MAP has been seen (e.g. resumed between TABLE_MAP and ROWS).</summary>
    MissingTableMap = 3,

    /// <summary>A column type the decoder does not understand; the message names the type id and the column.</summary>
    UnknownColumnType = 4,

    /// <summary>A server feature that changes the event encoding is on; the message names the server setting to change.</summary>
    UnsupportedFeature = 5,
}
