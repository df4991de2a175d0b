namespace KvStore.Cdc.Protocol;

/// <summary>Builds SSLRequest and HandshakeResponse41.</summary>
internal static class HandshakeResponse
{
    /// <summary>
    /// The smallest capability set that works with MariaDB and MySQL for a replication client
    /// (LONG_PASSWORD | LONG_FLAG | PROTOCOL_41 | SECURE_CONNECTION | PLUGIN_AUTH = 0x00088205).
    /// No CLIENT_DEPRECATE_EOF: text result sets keep their EOF packets, which keeps the reader simple.
    /// </summary>
    public const ProtocolCapabilities BaseCapabilities =
        ProtocolCapabilities.LongPassword | ProtocolCapabilities.LongFlag | ProtocolCapabilities.Protocol41
        | ProtocolCapabilities.SecureConnection | ProtocolCapabilities.PluginAuth;

    /// <summary>max_packet_size announced to the server: 16 MiB (events over it still arrive as continuation packets).</summary>
    public const uint MaxPacketSize = 0x0100_0000;

    /// <summary>utf8mb4_general_ci.</summary>
    public const byte Utf8Mb4GeneralCi = 45;

    /// <summary>Capabilities the client sends, given the server's and whether TLS is used.</summary>
    public static ProtocolCapabilities ClientCapabilities(ProtocolCapabilities server, bool useTls)
    {
        var capabilities = BaseCapabilities;
        if ((server & ProtocolCapabilities.PluginAuth) == 0)
        {
            capabilities &= ~ProtocolCapabilities.PluginAuth;
        }

        if (useTls)
        {
            capabilities |= ProtocolCapabilities.Ssl;
        }

        return capabilities;
    }

    /// <summary>SSLRequest: the first 32 bytes of HandshakeResponse41 with CLIENT_SSL set.</summary>
    public static byte[] BuildSslRequest(ProtocolCapabilities capabilities) =>
        WriteFixedPart(new PayloadBuilder(32), capabilities | ProtocolCapabilities.Ssl).ToArray();

    /// <summary>HandshakeResponse41 with a user name, auth response and plugin name (no database, no attributes).</summary>
    public static byte[] Build(ProtocolCapabilities capabilities, string userName, ReadOnlySpan<byte> authResponse, string authPluginName)
    {
        ArgumentNullException.ThrowIfNull(userName);
        var builder = WriteFixedPart(new PayloadBuilder(), capabilities);
        builder.WriteNullTerminatedString(userName);
        if ((capabilities & ProtocolCapabilities.PluginAuthLengthEncodedClientData) != 0)
        {
            builder.WriteLengthEncodedBytes(authResponse);
        }
        else
        {
            if (authResponse.Length > byte.MaxValue)
            {
                throw new ArgumentException("Auth response longer than 255 bytes needs CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA.", nameof(authResponse));
            }

            builder.WriteByte((byte)authResponse.Length).WriteBytes(authResponse);
        }

        if ((capabilities & ProtocolCapabilities.PluginAuth) != 0)
        {
            builder.WriteNullTerminatedString(authPluginName);
        }

        return builder.ToArray();
    }

    private static PayloadBuilder WriteFixedPart(PayloadBuilder builder, ProtocolCapabilities capabilities) =>
        builder.WriteUInt32((uint)capabilities)
            .WriteUInt32(MaxPacketSize)
            .WriteByte(Utf8Mb4GeneralCi)
            .WriteZeros(23);
}
