namespace KvStore.Cdc.Protocol;

/// <summary>Payload builders of the commands the replication client sends (byte-exact, tested against captures).</summary>
internal static class ReplicationCommands
{
    public const byte ComQuit = 0x01;
    public const byte ComQuery = 0x03;
    public const byte ComBinlogDump = 0x12;
    public const byte ComRegisterSlave = 0x15;
    public const byte ComBinlogDumpGtid = 0x1E;

    public static byte[] Quit() => [ComQuit];

    /// <summary>COM_QUERY: <c>0x03, sql string&lt;EOF&gt;</c>.</summary>
    public static byte[] Query(string sql)
    {
        ArgumentNullException.ThrowIfNull(sql);
        return new PayloadBuilder(sql.Length + 1).WriteByte(ComQuery).WriteString(sql).ToArray();
    }

    /// <summary>
    /// COM_REGISTER_SLAVE: <c>0x15, server_id int&lt;4&gt;, hostname, user, password (each int&lt;1&gt; length +
    /// bytes), port int&lt;2&gt;, rank int&lt;4&gt;, master_id int&lt;4&gt;</c>. Empty strings and zeros by default.
    /// </summary>
    public static byte[] RegisterReplica(uint serverId, string reportHost = "", string reportUser = "", string reportPassword = "", ushort reportPort = 0)
    {
        return new PayloadBuilder(18)
            .WriteByte(ComRegisterSlave)
            .WriteUInt32(serverId)
            .WriteByteLengthString(reportHost)
            .WriteByteLengthString(reportUser)
            .WriteByteLengthString(reportPassword)
            .WriteUInt16(reportPort)
            .WriteUInt32(0) // replication rank, unused
            .WriteUInt32(0) // master id, filled in by the server
            .ToArray();
    }

    /// <summary>COM_BINLOG_DUMP: <c>0x12, pos int&lt;4&gt;, flags int&lt;2&gt;, server_id int&lt;4&gt;, filename string&lt;EOF&gt;</c>.</summary>
    public static byte[] BinlogDump(uint position, BinlogDumpFlags flags, uint serverId, string fileName)
    {
        ArgumentNullException.ThrowIfNull(fileName);
        return new PayloadBuilder(11 + fileName.Length)
            .WriteByte(ComBinlogDump)
            .WriteUInt32(position)
            .WriteUInt16((ushort)flags)
            .WriteUInt32(serverId)
            .WriteString(fileName)
            .ToArray();
    }

    /// <summary>
    /// COM_BINLOG_DUMP_GTID (MySQL): <c>0x1e, flags int&lt;2&gt;, server_id int&lt;4&gt;, filename_len int&lt;4&gt;,
    /// filename, pos int&lt;8&gt;, data_size int&lt;4&gt;, data</c> where data is the encoded GTID set.
    /// </summary>
    public static byte[] BinlogDumpGtid(BinlogDumpFlags flags, uint serverId, string fileName, ulong position, MySqlGtidSet executed)
    {
        ArgumentNullException.ThrowIfNull(fileName);
        ArgumentNullException.ThrowIfNull(executed);
        var data = executed.Encode();
        var name = System.Text.Encoding.UTF8.GetBytes(fileName);
        return new PayloadBuilder(27 + name.Length + data.Length)
            .WriteByte(ComBinlogDumpGtid)
            .WriteUInt16((ushort)flags)
            .WriteUInt32(serverId)
            .WriteUInt32((uint)name.Length)
            .WriteBytes(name)
            .WriteUInt64(position)
            .WriteUInt32((uint)data.Length)
            .WriteBytes(data)
            .ToArray();
    }
}
