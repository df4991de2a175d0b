using System.Globalization;

namespace KvStore.Cdc.Protocol;

/// <summary>A binlog coordinate: file name and byte offset of the next event to read.</summary>
internal readonly record struct BinlogPosition(string FileName, long Position)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{FileName}:{Position}");
}
