using System.Linq.Expressions;
using System.Reflection;
using KvStore.Cdc;

namespace KvStore.Bench;

/// <summary>
/// The file decoding pipeline of KvStore.Cdc — <c>BinlogFileReader</c> → <c>BinlogEventParser</c> →
/// <c>KvChangeProjector</c> — driven from the benchmark. Those types are internal to KvStore.Cdc and
/// its InternalsVisibleTo names only its test assembly, so the few members used here are bound once
/// by name into compiled delegates (expression trees skip visibility checks). A call through them
/// costs a delegate invocation and a cast, nothing per byte, so the timings are those of the real
/// code. If KvStore.Cdc.csproj ever grants <c>InternalsVisibleTo KvStore.Bench</c>, this class
/// becomes plain calls; until then a renamed member fails here, at start-up, with its name.
/// </summary>
internal sealed class CdcDecoder
{
    private const string Ns = "KvStore.Cdc.";

    private readonly Func<string, IDisposable> _open;
    private readonly Func<IDisposable, ReadOnlyMemory<byte>> _readNext;
    private readonly Func<object> _newParser;
    private readonly Func<object, ReadOnlyMemory<byte>, object> _parse;
    private readonly Func<string, object> _newProjector;
    private readonly Func<object, object, bool> _acceptIsEnd;
    private readonly Func<object, List<KvChange>> _takeChanges;

    public CdcDecoder()
    {
        var assembly = typeof(KvChangeStream).Assembly;
        var readerType = Type(assembly, "Events.BinlogFileReader");
        var eventType = Type(assembly, "Events.BinlogEvent");
        var parserType = Type(assembly, "Events.BinlogEventParser");
        var optionsType = Type(assembly, "Events.BinlogParserOptions");
        var projectorType = Type(assembly, "Streaming.KvChangeProjector");
        var boundaryType = projectorType.GetNestedType("Boundary") ?? throw Missing(projectorType, "Boundary");

        // path => BinlogFileReader.Open(path)
        var path = Expression.Parameter(typeof(string), "path");
        _open = Expression.Lambda<Func<string, IDisposable>>(
            Expression.Convert(Expression.Call(Method(readerType, "Open", typeof(string)), path), typeof(IDisposable)), path).Compile();

        // reader => reader.ReadNext() is { } e ? e.Bytes : default   (empty = end of file; no event is empty)
        var reader = Expression.Parameter(typeof(IDisposable), "reader");
        var readNext = Method(readerType, "ReadNext");
        var next = Expression.Variable(readNext.ReturnType, "next");
        _readNext = Expression.Lambda<Func<IDisposable, ReadOnlyMemory<byte>>>(
            Expression.Block(
                [next],
                Expression.Assign(next, Expression.Call(Expression.Convert(reader, readerType), readNext)),
                Expression.Condition(
                    Expression.Property(next, "HasValue"),
                    Expression.Property(Expression.Property(next, "Value"), "Bytes"),
                    Expression.Default(typeof(ReadOnlyMemory<byte>)))),
            reader).Compile();

        // () => new BinlogEventParser(null): default options, CRC32 verified like any file read.
        _newParser = Expression.Lambda<Func<object>>(
            Expression.New(Constructor(parserType, optionsType), Expression.Constant(null, optionsType))).Compile();

        // (parser, bytes) => parser.Parse(bytes)
        var parser = Expression.Parameter(typeof(object), "parser");
        var bytes = Expression.Parameter(typeof(ReadOnlyMemory<byte>), "bytes");
        _parse = Expression.Lambda<Func<object, ReadOnlyMemory<byte>, object>>(
            Expression.Call(Expression.Convert(parser, parserType), Method(parserType, "Parse", typeof(ReadOnlyMemory<byte>)), bytes),
            parser, bytes).Compile();

        // database => new KvChangeProjector(database, "kv_entries")
        var database = Expression.Parameter(typeof(string), "database");
        _newProjector = Expression.Lambda<Func<string, object>>(
            Expression.New(Constructor(projectorType, typeof(string), typeof(string)), database, Expression.Constant("kv_entries")),
            database).Compile();

        // (projector, e) => projector.Accept((BinlogEvent)e) == Boundary.End
        var projector = Expression.Parameter(typeof(object), "projector");
        var binlogEvent = Expression.Parameter(typeof(object), "binlogEvent");
        var end = Convert.ToInt32(Enum.Parse(boundaryType, "End"), System.Globalization.CultureInfo.InvariantCulture);
        _acceptIsEnd = Expression.Lambda<Func<object, object, bool>>(
            Expression.Equal(
                Expression.Convert(
                    Expression.Call(Expression.Convert(projector, projectorType), Method(projectorType, "Accept", eventType), Expression.Convert(binlogEvent, eventType)),
                    typeof(int)),
                Expression.Constant(end)),
            projector, binlogEvent).Compile();

        // projector => projector.TakeChanges()
        _takeChanges = Expression.Lambda<Func<object, List<KvChange>>>(
            Expression.Call(Expression.Convert(projector, projectorType), Method(projectorType, "TakeChanges")), projector).Compile();
    }

    /// <summary>How far down the pipeline to go: lets the benchmark show where the time goes.</summary>
    public enum Depth
    {
        /// <summary>BinlogFileReader only: each event's bytes.</summary>
        Read,

        /// <summary>Plus BinlogEventParser: typed events, CRC32 checked, TABLE_MAPs resolved.</summary>
        Parse,

        /// <summary>Plus KvChangeProjector: row images decoded into <see cref="KvChange"/>s (the whole pipeline).</summary>
        Project,
    }

    /// <summary>What one pass produced.</summary>
    public readonly record struct Result(long Events, long Bytes, long Transactions, long Changes);

    /// <summary>Runs the pipeline over <paramref name="files"/>, in order, on the calling thread.</summary>
    public Result Run(IEnumerable<string> files, string database, Depth depth)
    {
        long events = 0, bytes = 0, transactions = 0, changes = 0;

        // One parser and one projector across files, as a stream that crosses a rotation would have.
        var parser = _newParser();
        var projector = _newProjector(database);
        foreach (var file in files)
        {
            using var reader = _open(file);
            while (_readNext(reader) is { IsEmpty: false } eventBytes)
            {
                events++;
                bytes += eventBytes.Length;
                if (depth == Depth.Read)
                {
                    continue;
                }

                var parsed = _parse(parser, eventBytes);
                if (depth == Depth.Project && _acceptIsEnd(projector, parsed))
                {
                    var taken = _takeChanges(projector);
                    if (taken.Count > 0)
                    {
                        transactions++;
                        changes += taken.Count;
                    }
                }
            }
        }

        return new Result(events, bytes, transactions, changes);
    }

    private static Type Type(Assembly assembly, string name) =>
        assembly.GetType(Ns + name) ?? throw new InvalidOperationException($"{Ns}{name} is not in {assembly.GetName().Name}: update bench/KvStore.Bench/CdcDecoder.cs.");

    private static MethodInfo Method(Type type, string name, params Type[] parameters) =>
        type.GetMethod(name, BindingFlags.Public | BindingFlags.Static | BindingFlags.Instance, parameters) ?? throw Missing(type, name);

    private static ConstructorInfo Constructor(Type type, params Type[] parameters) =>
        type.GetConstructor(parameters) ?? throw Missing(type, ".ctor");

    private static InvalidOperationException Missing(Type type, string member) =>
        new($"{type.FullName}.{member} was not found: update bench/KvStore.Bench/CdcDecoder.cs.");
}
