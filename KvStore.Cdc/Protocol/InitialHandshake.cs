using System.Text;

namespace KvStore.Cdc.Protocol;

/// <summary>The server greeting (Protocol::HandshakeV10).</summary>
internal sealed class InitialHandshake
{
    private InitialHandshake(
        ServerVersion version,
        uint connectionId,
        ProtocolCapabilities capabilities,
        byte characterSet,
        ushort statusFlags,
        byte[] scramble,
        string authPluginName,
        uint mariaDbExtendedCapabilities)
    {
        Version = version;
        ConnectionId = connectionId;
        Capabilities = capabilities;
        CharacterSet = characterSet;
        StatusFlags = statusFlags;
        Scramble = scramble;
        AuthPluginName = authPluginName;
        MariaDbExtendedCapabilities = mariaDbExtendedCapabilities;
    }

    public ServerVersion Version { get; }

    /// <summary>The server thread id (what <c>KILL</c> takes).</summary>
    public uint ConnectionId { get; }

    public ProtocolCapabilities Capabilities { get; }

    public byte CharacterSet { get; }

    public ushort StatusFlags { get; }

    /// <summary>The 20-byte nonce (auth-plugin-data part 1 + part 2, without part 2's trailing NUL).</summary>
    public byte[] Scramble { get; }

    /// <summary>The server's default auth plugin; empty when the server lacks CLIENT_PLUGIN_AUTH.</summary>
    public string AuthPluginName { get; }

    /// <summary>MariaDB's extended capabilities (last 4 reserved bytes); 0 on MySQL.</summary>
    public uint MariaDbExtendedCapabilities { get; }

    public static InitialHandshake Parse(ReadOnlySpan<byte> payload)
    {
        if (ServerPackets.IsErr(payload))
        {
            throw ServerPackets.ToException(payload, "when connecting");
        }

        var reader = new PayloadReader(payload);
        var protocolVersion = reader.ReadByte();
        if (protocolVersion != 10)
        {
            throw new ReplicationProtocolException($"Unsupported handshake protocol version {protocolVersion}; only HandshakeV10 (MySQL 4.1+, MariaDB) is supported.");
        }

        var version = ServerVersion.Parse(reader.ReadNullTerminatedString());
        var connectionId = reader.ReadUInt32();
        var part1 = reader.ReadBytes(8);
        reader.Skip(1);
        var capabilities = (ProtocolCapabilities)reader.ReadUInt16();
        byte charset = 0;
        ushort status = 0;
        byte authDataLength = 0;
        uint mariaDbCapabilities = 0;
        if (reader.Remaining > 0)
        {
            charset = reader.ReadByte();
            status = reader.ReadUInt16();
            capabilities |= (ProtocolCapabilities)((uint)reader.ReadUInt16() << 16);
            authDataLength = reader.ReadByte();
            reader.Skip(6);
            var extended = reader.ReadUInt32();
            if (version.IsMariaDb && (capabilities & ProtocolCapabilities.LongPassword) == 0)
            {
                // MariaDB clears CLIENT_MYSQL (bit 0) to say "the last 4 reserved bytes are extended capabilities".
                mariaDbCapabilities = extended;
            }
        }

        if ((capabilities & ProtocolCapabilities.Protocol41) == 0 || (capabilities & ProtocolCapabilities.SecureConnection) == 0)
        {
            throw new ReplicationProtocolException($"The server ({version.Text}) does not support the 4.1 protocol with secure authentication.");
        }

        // Part 2 is max(13, len - 8) bytes; its last byte is a NUL that is not part of the nonce.
        var part2Length = Math.Max(13, authDataLength - 8);
        var part2 = reader.ReadBytes(Math.Min(part2Length, reader.Remaining));
        var scrambleLength = authDataLength > 8 ? authDataLength - 1 : 20;
        var part2Used = Math.Min(part2.Length, scrambleLength - 8);
        if (part2Used == part2.Length && part2Used > 0 && part2[^1] == 0)
        {
            part2Used--;
        }

        var scramble = new byte[8 + part2Used];
        part1.CopyTo(scramble);
        part2[..part2Used].CopyTo(scramble.AsSpan(8));

        var plugin = string.Empty;
        if ((capabilities & ProtocolCapabilities.PluginAuth) != 0 && reader.Remaining > 0)
        {
            // Some old servers omit the terminating NUL.
            var rest = reader.Rest;
            var end = rest.IndexOf((byte)0);
            plugin = Encoding.UTF8.GetString(end < 0 ? rest : rest[..end]);
        }

        return new InitialHandshake(version, connectionId, capabilities, charset, status, scramble, plugin, mariaDbCapabilities);
    }
}
