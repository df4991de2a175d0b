namespace KvStore.Cdc.Protocol;

/// <summary>The server answered with an ERR packet.</summary>
internal sealed class ServerErrorException : ReplicationException
{
    public ServerErrorException(ushort serverErrorCode, string sqlState, string serverMessage, string? context = null)
        : base(ReplicationErrorCode.ServerError, Format(serverErrorCode, sqlState, serverMessage, context))
    {
        ServerErrorCode = serverErrorCode;
        SqlState = sqlState;
        ServerMessage = serverMessage;
    }

    /// <summary>The server's error number (e.g. 1045 access denied).</summary>
    public ushort ServerErrorCode { get; }

    /// <summary>The five-character SQLSTATE (<c>HY000</c> when the server sent none).</summary>
    public string SqlState { get; }

    /// <summary>The server's message text.</summary>
    public string ServerMessage { get; }

    /// <summary>
    /// Connection-level problems (too many connections, server shutting down, lock wait) may go away;
    /// access and syntax errors will not.
    /// </summary>
    public override bool IsTransient => ServerErrorCode is 1040 or 1053 or 1205 or 1213 or 1927 or 2013;

    internal static string Format(ushort code, string sqlState, string message, string? context) =>
        context is null
            ? $"Server error {code} ({sqlState}): {message}"
            : $"Server error {code} ({sqlState}) {context}: {message}";
}
