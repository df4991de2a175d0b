using System.Text;
using System.Text.Json;

namespace KvStore.Tests;

/// <summary>Every kind of bad input throws a typed error before any SQL runs, and nothing is written.</summary>
public sealed class KvStoreValidationTests(KvDatabase db) : IClassFixture<KvDatabase>
{
    private KvStoreClient Kv => db.Client;

    public static TheoryData<string> BadTables => new()
    {
        "",
        new string('t', 65),
        "has space",
        "slash/x",
        "quote'x",
        "semi;colon",
        "ünïcode",
        "percent%",
    };

    [Theory]
    [MemberData(nameof(BadTables))]
    public async Task Invalid_table_name_is_rejected_everywhere(string table)
    {
        var errors = new List<KvValidationException>
        {
            await Assert.ThrowsAsync<KvValidationException>(() => Kv.PutAsync(table, "k", 1)),
            await Assert.ThrowsAsync<KvValidationException>(() => Kv.GetAsync(table, "k")),
            await Assert.ThrowsAsync<KvValidationException>(() => Kv.ListAsync(table)),
            await Assert.ThrowsAsync<KvValidationException>(() => Kv.DeleteAsync(table, "k")),
            await Assert.ThrowsAsync<KvValidationException>(() => Kv.IncrementAsync(table, "k", 1)),
            await Assert.ThrowsAsync<KvValidationException>(() => Kv.GetChangesAsync(table, 0)),
            await Assert.ThrowsAsync<KvValidationException>(() => Kv.CommitAsync(new KvBatch(table).Put("k", JsonDocument.Parse("1").RootElement))),
        };

        Assert.All(errors, e => Assert.Equal(KvErrorCodes.InvalidTable, e.Code));
        Assert.Contains("A-Z", errors[0].Message);
    }

    [Fact]
    public async Task Valid_table_name_characters_are_accepted()
    {
        var table = "Aa0_.:-" + Guid.NewGuid().ToString("N")[..8];
        await Kv.PutAsync(table, "k", 1);
        Assert.NotNull(await Kv.GetAsync(table, "k"));
        Assert.NotNull(await Kv.PutAsync(new string('x', 64), "k", 1));
    }

    public static TheoryData<string> BadKeys => new()
    {
        "",
        new string('k', 256),
        new string('é', 128), // 256 UTF-8 bytes
    };

    [Fact]
    public async Task Key_with_unpaired_surrogate_is_rejected()
    {
        // Kept out of the theory: xunit replaces lone surrogates when it serializes theory data.
        var table = KvDatabase.NewTable();
        var ex = await Assert.ThrowsAsync<KvValidationException>(() => Kv.PutAsync(table, "lone\uD800surrogate", 1));
        Assert.Equal(KvErrorCodes.InvalidKey, ex.Code);
        Assert.Null(await db.RawTableRevisionAsync(table));
    }

    [Theory]
    [MemberData(nameof(BadKeys))]
    public async Task Invalid_key_is_rejected_and_nothing_is_written(string key)
    {
        var table = KvDatabase.NewTable();
        var put = await Assert.ThrowsAsync<KvValidationException>(() => Kv.PutAsync(table, key, 1));
        var inc = await Assert.ThrowsAsync<KvValidationException>(() => Kv.IncrementAsync(table, key, 1));
        var batch = await Assert.ThrowsAsync<KvValidationException>(() => Kv.CommitAsync(new KvBatch(table).PutJson("ok", "1"u8.ToArray()).PutJson(key, "1"u8.ToArray())));

        Assert.Equal(KvErrorCodes.InvalidKey, put.Code);
        Assert.Equal(KvErrorCodes.InvalidKey, inc.Code);
        Assert.Equal(KvErrorCodes.InvalidKey, batch.Code);
        Assert.Null(await db.RawTableRevisionAsync(table));
    }

    public static TheoryData<byte[]> BadJson => new()
    {
        Array.Empty<byte>(),
        "{"u8.ToArray(),
        "1 2"u8.ToArray(),
        "{\"a\":1,}"u8.ToArray(),
        "NaN"u8.ToArray(),
        "undefined"u8.ToArray(),
        "'single'"u8.ToArray(),
        "// comment\n1"u8.ToArray(),
        new byte[] { (byte)'"', 0xC3, 0x28, (byte)'"' }, // invalid UTF-8
        Encoding.UTF8.GetBytes(new string('[', 100) + new string(']', 100)), // too deep
    };

    [Theory]
    [MemberData(nameof(BadJson))]
    public async Task Invalid_json_is_rejected_and_nothing_is_written(byte[] json)
    {
        var table = KvDatabase.NewTable();
        var ex = await Assert.ThrowsAsync<KvValidationException>(() => Kv.PutJsonAsync(table, "k", json));
        var inBatch = await Assert.ThrowsAsync<KvValidationException>(() => Kv.CommitAsync(new KvBatch(table).PutJson("k", json)));

        Assert.Equal(KvErrorCodes.InvalidJson, ex.Code);
        Assert.Equal(KvErrorCodes.InvalidJson, inBatch.Code);
        Assert.Null(await db.RawTableRevisionAsync(table));
    }

    [Fact]
    public async Task Value_over_the_configured_limit_is_rejected()
    {
        var small = db.CreateClient(o => o.MaxValueBytes = 100);
        var table = KvDatabase.NewTable();
        var json = Encoding.UTF8.GetBytes("\"" + new string('x', 99) + "\"");

        var ex = await Assert.ThrowsAsync<KvValidationException>(() => small.PutJsonAsync(table, "k", json));

        Assert.Equal(KvErrorCodes.ValueTooLarge, ex.Code);
        Assert.Contains("100", ex.Message);
        Assert.Null(await db.RawTableRevisionAsync(table));
    }

    [Fact]
    public async Task Default_undefined_json_element_is_rejected()
    {
        var ex = await Assert.ThrowsAsync<KvValidationException>(() => Kv.PutAsync(KvDatabase.NewTable(), "k", default(JsonElement)));
        Assert.Equal(KvErrorCodes.InvalidJson, ex.Code);
    }

    public static TheoryData<TimeSpan> BadTtls => new()
    {
        TimeSpan.Zero,
        TimeSpan.FromSeconds(-1),
        TimeSpan.FromTicks(9_999), // under 1 ms
        TimeSpan.FromDays(3651),
    };

    [Theory]
    [MemberData(nameof(BadTtls))]
    public async Task Ttl_out_of_range_is_rejected(TimeSpan ttl)
    {
        var table = KvDatabase.NewTable();
        await Kv.PutAsync(table, "existing", 1);

        var put = await Assert.ThrowsAsync<KvValidationException>(() => Kv.PutAsync(table, "k", 1, new KvPutOptions { Ttl = ttl }));
        var set = await Assert.ThrowsAsync<KvValidationException>(() => Kv.SetTtlAsync(table, "existing", ttl));

        Assert.Equal(KvErrorCodes.InvalidTtl, put.Code);
        Assert.Equal(KvErrorCodes.InvalidTtl, set.Code);
        Assert.Equal(1, await Kv.GetTableRevisionAsync(table));
    }

    [Fact]
    public async Task Negative_revision_and_contradictory_conditions_are_rejected()
    {
        var table = KvDatabase.NewTable();
        var negative = await Assert.ThrowsAsync<KvValidationException>(() => Kv.PutAsync(table, "k", 1, new KvPutOptions { IfRevision = -1 }));
        var both = await Assert.ThrowsAsync<KvValidationException>(() => Kv.PutAsync(table, "k", 1, new KvPutOptions { IfRevision = 3, IfAbsent = true }));
        var delete = await Assert.ThrowsAsync<KvValidationException>(() => Kv.DeleteAsync(table, "k", ifRevision: -5));
        var changes = await Assert.ThrowsAsync<KvValidationException>(() => Kv.GetChangesAsync(table, -1));

        Assert.All(new[] { negative, both, delete, changes }, e => Assert.Equal(KvErrorCodes.InvalidArgument, e.Code));
        Assert.Null(await db.RawTableRevisionAsync(table));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(1001)]
    public async Task List_limit_out_of_range_is_rejected(int limit)
    {
        var ex = await Assert.ThrowsAsync<KvValidationException>(() => Kv.ListAsync(KvDatabase.NewTable(), limit: limit));
        Assert.Equal(KvErrorCodes.InvalidArgument, ex.Code);
    }

    [Fact]
    public async Task Empty_oversized_and_duplicate_key_batches_are_rejected()
    {
        var table = KvDatabase.NewTable();
        var empty = await Assert.ThrowsAsync<KvValidationException>(() => Kv.CommitAsync(new KvBatch(table)));
        var big = new KvBatch(table);
        for (var i = 0; i < 101; i++)
        {
            big.PutJson("k" + i, "1"u8.ToArray());
        }

        var tooBig = await Assert.ThrowsAsync<KvValidationException>(() => Kv.CommitAsync(big));
        var dup = await Assert.ThrowsAsync<KvValidationException>(() => Kv.CommitAsync(new KvBatch(table).PutJson("a", "1"u8.ToArray()).Delete("a")));

        Assert.Equal(KvErrorCodes.InvalidArgument, empty.Code);
        Assert.Equal(KvErrorCodes.InvalidArgument, tooBig.Code);
        Assert.Equal(KvErrorCodes.InvalidArgument, dup.Code);
        Assert.Null(await db.RawTableRevisionAsync(table));
    }

    [Fact]
    public async Task GetMany_over_the_page_limit_is_rejected()
    {
        var keys = Enumerable.Range(0, 1001).Select(i => "k" + i);
        var ex = await Assert.ThrowsAsync<KvValidationException>(() => Kv.GetManyAsync(KvDatabase.NewTable(), keys));
        Assert.Equal(KvErrorCodes.InvalidArgument, ex.Code);
    }

    [Fact]
    public void Invalid_options_are_rejected_when_the_client_is_created()
    {
        var ex = Assert.Throws<Microsoft.Extensions.Options.OptionsValidationException>(
            () => new KvStoreClient(new KvStoreOptions { ConnectionString = "", MaxValueBytes = KvStoreOptions.HardMaxValueBytes + 1, MaxQueuedPuts = 0 }));
        Assert.Contains(ex.Failures, f => f.Contains("ConnectionString", StringComparison.Ordinal));
        Assert.Contains(ex.Failures, f => f.Contains("MaxValueBytes", StringComparison.Ordinal));
        Assert.Contains(ex.Failures, f => f.Contains("MaxQueuedPuts", StringComparison.Ordinal));
    }
}
