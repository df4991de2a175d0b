using KvStore.Cdc.Events;
using KvStore.Cdc.Streaming;

namespace KvStore.Bench;

/// <summary>
/// The file decoding pipeline of KvStore.Cdc — <see cref="BinlogFileReader"/> → <see cref="BinlogEventParser"/> →
/// <see cref="KvChangeProjector"/> — driven from the benchmark, on the calling thread (KvStore.Cdc grants this
/// assembly its internals).
/// </summary>
internal static class CdcDecoder
{
    /// <summary>How far down the pipeline to go: lets the benchmark show where the time goes.</summary>
    public enum Depth
    {
        /// <summary>BinlogFileReader only: each event's bytes.</summary>
        Read,

        /// <summary>Plus BinlogEventParser: typed events, CRC32 checked, TABLE_MAPs resolved.</summary>
        Parse,

        /// <summary>Plus KvChangeProjector: row images decoded into <see cref="Cdc.KvChange"/>s (the whole pipeline).</summary>
        Project,

        /// <summary>Plus what a consumer forwarding raw JSON pays: every put's <see cref="Cdc.KvChange.ValueUtf8"/> (checked on first access).</summary>
        ProjectAndReadUtf8,

        /// <summary>Plus what a consumer of parsed values pays: every put's <see cref="Cdc.KvChange.Value"/> (a JsonElement, parsed on first access).</summary>
        ProjectAndParseValue,
    }

    /// <summary>What one pass produced.</summary>
    public readonly record struct Result(long Events, long Bytes, long Transactions, long Changes);

    /// <summary>Runs the pipeline over <paramref name="files"/>, in order, on the calling thread.</summary>
    public static Result Run(IEnumerable<string> files, string database, Depth depth)
    {
        long events = 0, bytes = 0, transactions = 0, changes = 0;

        // One parser and one projector across files, as a stream that crosses a rotation would have.
        // Default parser options: CRC32 verified, like any file read.
        var parser = new BinlogEventParser();
        var projector = new KvChangeProjector(database);
        foreach (var file in files)
        {
            using var reader = BinlogFileReader.Open(file);
            while (reader.ReadNext() is { } next)
            {
                events++;
                bytes += next.Bytes.Length;
                if (depth == Depth.Read)
                {
                    continue;
                }

                var parsed = parser.Parse(next.Bytes);
                if (depth >= Depth.Project && projector.Accept(parsed) == KvChangeProjector.Boundary.End)
                {
                    var taken = projector.TakeChanges();
                    if (taken.Count > 0)
                    {
                        transactions++;
                        changes += taken.Count;
                    }

                    foreach (var change in taken)
                    {
                        // Counted into a result, so that the JIT cannot drop the reads.
                        bytes += depth switch
                        {
                            Depth.ProjectAndReadUtf8 => change.ValueUtf8.Length,
                            Depth.ProjectAndParseValue => (int)change.Value.ValueKind,
                            _ => 0,
                        };
                    }
                }
            }
        }

        return new Result(events, bytes, transactions, changes);
    }
}
