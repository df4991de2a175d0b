using System.IO.Pipelines;
using KvStore.Cdc.Protocol;
using KvStore.Cdc.Tests.Protocol;

namespace KvStore.Cdc.Tests;

public sealed class ProtocolPacketTests
{
    [Fact]
    public async Task Reads_consecutive_packets_and_checks_sequence_ids()
    {
        var bytes = PacketBytes.FrameAll([[1, 2, 3], [], [9]], firstSequenceId: 5);
        using var reader = new PacketReader(PipeReader.Create(new MemoryStream(bytes))) { SequenceId = 5 };

        Assert.Equal(new byte[] { 1, 2, 3 }, (await reader.ReadPayloadAsync()).ToArray());
        Assert.Empty((await reader.ReadPayloadAsync()).ToArray());
        Assert.Equal(new byte[] { 9 }, (await reader.ReadPayloadAsync()).ToArray());
        Assert.Equal(8, reader.SequenceId);
        await Assert.ThrowsAsync<ReplicationConnectionLostException>(async () => await reader.ReadPayloadAsync());
    }

    [Fact]
    public async Task Out_of_order_sequence_id_is_a_protocol_error()
    {
        var bytes = PacketBytes.Frame([1], sequenceId: 3);
        using var reader = new PacketReader(PipeReader.Create(new MemoryStream(bytes))) { SequenceId = 2 };
        var error = await Assert.ThrowsAsync<ReplicationProtocolException>(async () => await reader.ReadPayloadAsync());
        Assert.Contains("expected sequence id 2, got 3", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0xFFFFFF - 1)]
    [InlineData(0xFFFFFF)]
    [InlineData(0xFFFFFF + 1)]
    [InlineData((2 * 0xFFFFFF) + 12345)]
    public async Task Joins_continuation_packets_of_16_MiB_and_more(int size)
    {
        var payload = new byte[size];
        new Random(size).NextBytes(payload);
        var framed = PacketBytes.Frame(payload, sequenceId: 250);
        var expectedPackets = (size / 0xFFFFFF) + 1;
        Assert.Equal(size + (4 * expectedPackets), framed.Length);

        // Small reads from the source: chunks cross many pipe segments.
        using var reader = new PacketReader(PipeReader.Create(new MemoryStream(framed), new StreamPipeReaderOptions(bufferSize: 4096))) { SequenceId = 250 };
        var read = await reader.ReadPayloadAsync();
        Assert.Equal(size, read.Length);
        Assert.True(read.Span.SequenceEqual(payload));
        Assert.Equal((byte)(250 + expectedPackets), reader.SequenceId);
    }

    [Fact]
    public async Task Payload_over_the_limit_is_rejected()
    {
        using var reader = new PacketReader(PipeReader.Create(new MemoryStream(PacketBytes.Frame(new byte[5000]))), maxPayloadLength: 4096);
        await Assert.ThrowsAsync<ReplicationProtocolException>(async () => await reader.ReadPayloadAsync());
    }

    [Fact]
    public async Task Connection_closed_mid_packet_is_a_lost_connection()
    {
        var framed = PacketBytes.Frame(new byte[100]);
        using var reader = new PacketReader(PipeReader.Create(new MemoryStream(framed[..50])));
        var error = await Assert.ThrowsAsync<ReplicationConnectionLostException>(async () => await reader.ReadPayloadAsync());
        Assert.Contains("middle of a packet", error.Message, StringComparison.Ordinal);
        Assert.True(error.IsTransient);
    }

    [Fact]
    public async Task Silence_longer_than_the_read_timeout_throws_a_timeout()
    {
        var pipe = new Pipe();
        using var reader = new PacketReader(pipe.Reader) { ReadTimeout = TimeSpan.FromMilliseconds(200), Activity = "waiting for binlog events" };
        var error = await Assert.ThrowsAsync<ReplicationTimeoutException>(async () => await reader.ReadPayloadAsync());
        Assert.Equal(ReplicationErrorCode.Timeout, error.ErrorCode);
        Assert.Contains("waiting for binlog events", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Steady_traffic_keeps_the_read_timeout_from_firing_although_the_total_exceeds_it()
    {
        // Packets 0.9 s apart, five times: 4.5 s in total, more than the 1 s timeout, which is measured per wait.
        var clock = new ManualTimeProvider();
        var pipe = new Pipe();
        using var reader = new PacketReader(pipe.Reader, clock) { ReadTimeout = TimeSpan.FromSeconds(1) };
        for (byte i = 0; i < 5; i++)
        {
            var read = reader.ReadPayloadAsync().AsTask();
            clock.Advance(TimeSpan.FromMilliseconds(900));
            await pipe.Writer.WriteAsync(PacketBytes.Frame([i], i));
            Assert.Equal(i, (await read.WaitAsync(TimeSpan.FromSeconds(10))).Span[0]);
        }
    }

    [Fact]
    public async Task Read_timeout_follows_the_injected_clock_and_restarts_with_each_wait()
    {
        var clock = new ManualTimeProvider();
        var pipe = new Pipe();
        using var reader = new PacketReader(pipe.Reader, clock) { ReadTimeout = TimeSpan.FromSeconds(10) };

        var first = reader.ReadPayloadAsync().AsTask();
        clock.Advance(TimeSpan.FromSeconds(9));
        Assert.False(first.IsCompleted);
        await pipe.Writer.WriteAsync(PacketBytes.Frame([1], 0));
        Assert.Equal(1, (await first).Span[0]);

        // A new wait gets the full 10 s again.
        var second = reader.ReadPayloadAsync().AsTask();
        clock.Advance(TimeSpan.FromSeconds(9));
        await Task.Delay(50);
        Assert.False(second.IsCompleted);
        clock.Advance(TimeSpan.FromSeconds(2));
        var error = await Assert.ThrowsAsync<ReplicationTimeoutException>(() => second.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(TimeSpan.FromSeconds(10), error.Timeout);
    }

    [Fact]
    public async Task A_slow_consumer_does_not_trip_the_read_timeout()
    {
        // The consumer takes far longer than the timeout between reads; data already buffered is no wait.
        var clock = new ManualTimeProvider();
        var pipe = new Pipe();
        using var reader = new PacketReader(pipe.Reader, clock) { ReadTimeout = TimeSpan.FromMilliseconds(150) };
        await pipe.Writer.WriteAsync(PacketBytes.FrameAll([[1], [2]]));
        Assert.Equal(1, (await reader.ReadPayloadAsync()).Span[0]);
        clock.Advance(TimeSpan.FromMilliseconds(400));
        Assert.Equal(2, (await reader.ReadPayloadAsync()).Span[0]);
    }

    [Fact]
    public async Task Caller_cancellation_is_not_reported_as_a_timeout()
    {
        var pipe = new Pipe();
        using var reader = new PacketReader(pipe.Reader) { ReadTimeout = TimeSpan.FromSeconds(30) };
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await reader.ReadPayloadAsync(cts.Token));
    }

    [Fact]
    public async Task Writer_splits_payloads_at_16_MiB_and_adds_an_empty_trailer_for_exact_multiples()
    {
        foreach (var size in new[] { 10, 0xFFFFFF, 0xFFFFFF + 7 })
        {
            var payload = new byte[size];
            new Random(size).NextBytes(payload);
            var pipe = new Pipe();
            var writer = new PacketWriter(pipe.Writer) { SequenceId = 3 };
            var send = writer.SendAsync(payload);
            var output = new MemoryStream();
            var copy = pipe.Reader.CopyToAsync(output);
            await send;
            await pipe.Writer.CompleteAsync();
            await copy;
            Assert.Equal(PacketBytes.Frame(payload, 3), output.ToArray());
        }
    }

    [Fact]
    public void Length_encoded_integers_round_trip()
    {
        foreach (var value in new ulong[] { 0, 250, 251, 0xFFFF, 0x10000, 0xFFFFFF, 0x1000000, ulong.MaxValue })
        {
            var bytes = new PayloadBuilder().WriteLengthEncodedInteger(value).ToArray();
            var reader = new PayloadReader(bytes);
            Assert.Equal(value, reader.ReadLengthEncodedInteger());
            Assert.Equal(0, reader.Remaining);
        }

        Assert.Equal(new byte[] { 0xFC, 0xFB, 0x00 }, new PayloadBuilder().WriteLengthEncodedInteger(251).ToArray());
        Assert.Equal(new byte[] { 0xFD, 0x00, 0x00, 0x01 }, new PayloadBuilder().WriteLengthEncodedInteger(0x10000).ToArray());
        Assert.Null(new PayloadReader([0xFB]).ReadLengthEncodedIntegerOrNull());
    }

    [Fact]
    public void Length_encoded_strings_and_nul_terminated_strings_are_read()
    {
        byte[] bytes = [3, (byte)'a', (byte)'b', (byte)'c', 0xFB, (byte)'x', 0, (byte)'r', (byte)'e', (byte)'s', (byte)'t'];
        var reader = new PayloadReader(bytes);
        Assert.Equal("abc", reader.ReadLengthEncodedStringOrNull());
        Assert.Null(reader.ReadLengthEncodedStringOrNull());
        Assert.Equal("x", reader.ReadNullTerminatedString());
        Assert.Equal("rest", reader.ReadRestAsString());
        Assert.Throws<ReplicationProtocolException>(() => new PayloadReader([5, 1]).ReadLengthEncodedStringOrNull());
    }

    [Fact]
    public void Err_packet_parses_code_sqlstate_and_message()
    {
        var payload = new byte[] { 0xFF, 0x15, 0x04, (byte)'#' }.Concat("28000Access denied"u8.ToArray()).ToArray();
        var error = ServerPackets.ToException(payload, "authenticating");
        Assert.Equal(1045, error.ServerErrorCode);
        Assert.Equal("28000", error.SqlState);
        Assert.Equal("Access denied", error.ServerMessage);
        Assert.Equal(ReplicationErrorCode.ServerError, error.ErrorCode);
        Assert.False(error.IsTransient);
        Assert.Contains("1045", error.Message, StringComparison.Ordinal);

        // Pre-4.1 style (no '#'): state defaults to HY000.
        var old = ServerPackets.ParseError(new byte[] { 0xFF, 0x10, 0x04 }.Concat("Too many connections"u8.ToArray()).ToArray());
        Assert.Equal((ushort)1040, old.Code);
        Assert.Equal("HY000", old.SqlState);
    }

    [Fact]
    public void Eof_needs_fewer_than_nine_bytes()
    {
        Assert.True(ServerPackets.IsEof([0xFE, 0, 0, 2, 0]));
        Assert.False(ServerPackets.IsEof([0xFE, 1, 2, 3, 4, 5, 6, 7, 8]));
        Assert.True(ServerPackets.IsOk([0, 0, 0, 2, 0, 0, 0]));
    }
}
