using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace KvStore.Cdc.Tests.Protocol;

/// <summary>One <c>streams/*.stream</c> capture with its <c>.json</c> metadata and <c>.index.txt</c> lines.</summary>
internal sealed partial class StreamCapture
{
    public static readonly string[] Names =
    [
        "dump-from-position",
        "dump-from-mid-position",
        "dump-from-gtid",
        "dump-annotate-flag",
        "dump-checksum-none",
        "dump-no-slave-capability",
        "heartbeat-tail",
    ];

    private StreamCapture(string name, JsonElement json, IReadOnlyList<IndexLine> index)
    {
        Name = name;
        Json = json;
        Index = index;
    }

    public string Name { get; }

    public JsonElement Json { get; }

    public IReadOnlyList<IndexLine> Index { get; }

    public string StreamPath => Fixtures.Path($"mariadb-10.11-generated/streams/mariadb-10.11-{Name}.stream");

    public string Password => Json.GetProperty("password").GetString()!;

    public string DumpFile => Json.GetProperty("dump").GetProperty("file").GetString()!;

    public uint DumpPosition => Json.GetProperty("dump").GetProperty("pos").GetUInt32();

    public ushort DumpFlags => Json.GetProperty("dump").GetProperty("flags").GetUInt16();

    public uint DumpServerId => Json.GetProperty("dump").GetProperty("server_id").GetUInt32();

    public IReadOnlyList<string> Setup => Json.GetProperty("setup").EnumerateArray().Select(e => e.GetString()!).ToList();

    public byte[] Hex(string property) => Convert.FromHexString(Json.GetProperty(property).GetString()!);

    public static StreamCapture Load(string name)
    {
        var basePath = Fixtures.Path($"mariadb-10.11-generated/streams/mariadb-10.11-{name}");
        using var document = JsonDocument.Parse(File.ReadAllText(basePath + ".json"));
        var index = File.ReadAllLines(basePath + ".index.txt")
            .Where(line => line.StartsWith('#'))
            .Select(IndexLine.Parse)
            .ToList();
        return new StreamCapture(name, document.RootElement.Clone(), index);
    }

    public override string ToString() => Name;

    /// <summary>One line of an <c>.index.txt</c>: a packet with its event header fields, or a status packet (EOF).</summary>
    internal sealed partial record IndexLine(int Sequence, int PacketLength, int? EventType, uint EventLength, uint LogPosition, ushort Flags, byte? Status, long? RotatePosition, string? RotateName)
    {
        public static IndexLine Parse(string line)
        {
            var seq = int.Parse(SeqPattern().Match(line).Groups[1].Value, CultureInfo.InvariantCulture);
            var length = int.Parse(LenPattern().Match(line).Groups[1].Value, CultureInfo.InvariantCulture);
            var status = StatusPattern().Match(line);
            if (status.Success)
            {
                return new IndexLine(seq, length, null, 0, 0, 0, byte.Parse(status.Groups[1].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture), null, null);
            }

            var type = int.Parse(TypePattern().Match(line).Groups[1].Value, CultureInfo.InvariantCulture);
            var eventLength = uint.Parse(EventLenPattern().Match(line).Groups[1].Value, CultureInfo.InvariantCulture);
            var logPos = uint.Parse(LogPosPattern().Match(line).Groups[1].Value, CultureInfo.InvariantCulture);
            var flags = ushort.Parse(FlagsPattern().Match(line).Groups[1].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            long? rotatePos = null;
            string? rotateName = null;
            var rotate = RotatePattern().Match(line);
            if (type == 4 && rotate.Success)
            {
                rotatePos = long.Parse(rotate.Groups[1].Value, CultureInfo.InvariantCulture);
                rotateName = rotate.Groups[2].Value;
            }

            return new IndexLine(seq, length, type, eventLength, logPos, flags, null, rotatePos, rotateName);
        }

        [GeneratedRegex(@"seq=\s*(\d+)")]
        private static partial Regex SeqPattern();

        [GeneratedRegex(@"len=\s*(\d+)")]
        private static partial Regex LenPattern();

        [GeneratedRegex(@"status=0x([0-9a-f]+)")]
        private static partial Regex StatusPattern();

        [GeneratedRegex(@"type=\s*(\d+)")]
        private static partial Regex TypePattern();

        [GeneratedRegex(@"event_len=(\d+)")]
        private static partial Regex EventLenPattern();

        [GeneratedRegex(@"log_pos=(\d+)")]
        private static partial Regex LogPosPattern();

        [GeneratedRegex(@"flags=0x([0-9a-f]+)")]
        private static partial Regex FlagsPattern();

        // Binlog file names are "mariadb-bin.NNNNNN"; the index prints trailing CRC bytes after them.
        [GeneratedRegex(@"pos=(\d+) name=b'(mariadb-bin\.\d{6})")]
        private static partial Regex RotatePattern();
    }
}
