namespace KvStore.Cdc.Tests.Protocol;

/// <summary>Test-side packet framing, written independently of the client's PacketWriter.</summary>
internal static class PacketBytes
{
    /// <summary>Frames a payload (splitting at 0xFFFFFF, with an empty trailer for exact multiples).</summary>
    public static byte[] Frame(byte[] payload, byte sequenceId = 0)
    {
        using var output = new MemoryStream();
        var offset = 0;
        while (true)
        {
            var chunk = Math.Min(payload.Length - offset, 0xFFFFFF);
            output.WriteByte((byte)chunk);
            output.WriteByte((byte)(chunk >> 8));
            output.WriteByte((byte)(chunk >> 16));
            output.WriteByte(sequenceId++);
            output.Write(payload, offset, chunk);
            offset += chunk;
            if (chunk < 0xFFFFFF)
            {
                return output.ToArray();
            }
        }
    }

    /// <summary>Frames several payloads with consecutive sequence ids.</summary>
    public static byte[] FrameAll(IEnumerable<byte[]> payloads, byte firstSequenceId = 0)
    {
        using var output = new MemoryStream();
        var sequence = firstSequenceId;
        foreach (var payload in payloads)
        {
            var framed = Frame(payload, sequence);
            output.Write(framed);
            sequence = (byte)(sequence + Math.Max(1, (payload.Length / 0xFFFFFF) + 1));
        }

        return output.ToArray();
    }
}
