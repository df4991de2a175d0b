namespace KvStore.Cdc.Protocol;

/// <summary>Client/server capability flags of the MySQL protocol (HandshakeV10, HandshakeResponse41).</summary>
[Flags]
internal enum ProtocolCapabilities : uint
{
    None = 0,
    LongPassword = 0x1,
    FoundRows = 0x2,
    LongFlag = 0x4,
    ConnectWithDb = 0x8,
    Protocol41 = 0x200,
    Ssl = 0x800,
    Transactions = 0x2000,
    SecureConnection = 0x8000,
    PluginAuth = 0x80000,
    ConnectAttributes = 0x100000,
    PluginAuthLengthEncodedClientData = 0x200000,
    DeprecateEof = 0x1000000,
}
