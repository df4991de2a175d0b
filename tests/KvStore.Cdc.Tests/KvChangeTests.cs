using System.Text;
using System.Text.Json;

namespace KvStore.Cdc.Tests;

/// <summary><see cref="KvChange"/>: raw UTF-8 value, lazily parsed <see cref="KvChange.Value"/>, equality.</summary>
public sealed class KvChangeTests
{
    private static readonly DateTimeOffset At = new(2026, 11, 23, 12, 0, 0, TimeSpan.Zero);

    private static KvChange Put(string storedText) => Put(Encoding.UTF8.GetBytes(storedText));

    private static KvChange Put(byte[] stored) => new("t", "k", KvChangeOperation.Put, stored, 2, 1, At, At, null);

    /// <summary>Writes <paramref name="utf8"/> with the validation <see cref="Utf8JsonWriter.WriteRawValue(ReadOnlySpan{byte}, bool)"/> does.</summary>
    private static string WrittenRaw(ReadOnlyMemory<byte> utf8)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteRawValue(utf8.Span);
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    [Fact]
    public void Valid_json_is_the_stored_bytes_themselves_and_value_parses_them()
    {
        var stored = """ {"a": [1, 2.5, "ü"], "b": null} """u8.ToArray();

        var change = Put(stored);

        Assert.True(change.ValueUtf8.Span == stored.AsSpan(), "ValueUtf8 should be the stored array, not a copy");
        Assert.Equal(JsonValueKind.Object, change.Value.ValueKind);
        Assert.True(JsonElement.DeepEquals(JsonDocument.Parse(stored).RootElement, change.Value));
        Assert.Equal("ü", change.Value.GetProperty("a")[2].GetString());
    }

    [Fact]
    public void Value_is_parsed_once_and_the_same_on_every_thread()
    {
        var change = Put("""{"n":42}""");
        var seen = new JsonElement[64];

        Parallel.For(0, seen.Length, i => seen[i] = change.Value);

        // Racing first reads may each parse, but one result is kept: later reads all return it.
        var kept = change.Value;
        Assert.All(seen, v => Assert.Equal(42, v.GetProperty("n").GetInt32()));
        Assert.True(kept.Equals(change.Value), "Value should be cached");
    }

    [Theory]
    [InlineData("not json", "not json")]
    [InlineData("{\"a\":", "{\"a\":")]
    [InlineData("'single'", "'single'")]
    [InlineData("é \"quoted\" <tag>", "é \"quoted\" <tag>")]
    public void Invalid_json_comes_out_as_a_json_string_of_its_text_in_both_forms(string stored, string text)
    {
        var change = Put(stored);

        Assert.Equal(JsonValueKind.String, change.Value.ValueKind);
        Assert.Equal(text, change.Value.GetString());
        Assert.Equal(text, JsonDocument.Parse(change.ValueUtf8).RootElement.GetString());
        Assert.Equal(change.Value.GetRawText(), Encoding.UTF8.GetString(change.ValueUtf8.Span));
        Assert.Equal(change.Value.GetRawText(), WrittenRaw(change.ValueUtf8));
    }

    [Fact]
    public void Bytes_that_are_not_utf8_come_out_as_a_json_string_with_replacement_characters()
    {
        var change = Put([0xFF, (byte)'a', 0xFE]);

        Assert.Equal("\uFFFDa\uFFFD", change.Value.GetString());
        Assert.Equal("\uFFFDa\uFFFD", JsonDocument.Parse(change.ValueUtf8).RootElement.GetString());
    }

    [Fact]
    public void Anything_after_the_first_json_value_is_dropped_in_both_forms()
    {
        var change = Put("""{"a":1} and more""");

        Assert.Equal("""{"a":1}""", change.Value.GetRawText());
        Assert.Equal("""{"a":1}""", Encoding.UTF8.GetString(change.ValueUtf8.Span));
        Assert.Equal("""{"a":1}""", WrittenRaw(change.ValueUtf8));
    }

    [Fact]
    public void Trailing_whitespace_keeps_the_stored_bytes()
    {
        var change = Put("[1]\n ");

        Assert.Equal("[1]\n ", Encoding.UTF8.GetString(change.ValueUtf8.Span));
        Assert.Equal(1, change.Value.GetArrayLength());
    }

    [Fact]
    public void No_value_is_undefined_and_empty()
    {
        var delete = new KvChange("t", "k", KvChangeOperation.Delete, ReadOnlyMemory<byte>.Empty, 3, 1, At, At, null);

        Assert.Equal(JsonValueKind.Undefined, delete.Value.ValueKind);
        Assert.True(delete.ValueUtf8.IsEmpty);
    }

    [Fact]
    public void Changes_with_equal_value_bytes_in_different_arrays_are_equal()
    {
        var a = Put("""{"x":1}""");
        var b = Put("""{"x":1}""");
        _ = a.Value; // a parsed value cached on one side only must not matter

        Assert.Equal(a, b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        Assert.NotEqual(a, Put("""{"x":2}"""));
        Assert.NotEqual(a, Put("""{ "x":1}""")); // bytes, not JSON semantics
        Assert.NotEqual(a, a with { Revision = 3 });
        Assert.NotEqual(a, a with { IsUnversioned = true });
    }

    [Fact]
    public void Invalid_json_equals_the_json_string_it_comes_out_as()
    {
        Assert.Equal(Put("not json"), Put("\"not json\""));
    }

    [Fact]
    public void With_a_new_value_forgets_the_parsed_one()
    {
        var a = Put("1");
        Assert.Equal(1, a.Value.GetInt32());
        Assert.Equal("1", Encoding.UTF8.GetString(a.ValueUtf8.Span));

        var b = a with { ValueUtf8 = "2"u8.ToArray() };

        Assert.Equal(2, b.Value.GetInt32());
        Assert.Equal("2", Encoding.UTF8.GetString(b.ValueUtf8.Span));
        Assert.Equal(1, a.Value.GetInt32());
    }
}
