namespace KvStore.Cdc.Protocol;

/// <summary>
/// When to use TLS. Unlike libmysqlclient, every TLS mode validates the server certificate
/// (chain and host name) unless <see cref="BinlogClientOptions.DisableCertificateValidation"/> is set:
/// encryption without authentication does not stop a man in the middle.
/// </summary>
internal enum SslMode
{
    /// <summary>Never use TLS. The password proof and all binlog data travel in clear.</summary>
    None,

    /// <summary>Use TLS when the server offers it (validated); plain TCP otherwise. The default.</summary>
    Preferred,

    /// <summary>Require TLS; fail if the server does not offer it. The certificate is validated like <see cref="VerifyFull"/>.</summary>
    Required,

    /// <summary>Require TLS and validate the certificate chain, but not the host name.</summary>
    VerifyCA,

    /// <summary>Require TLS and validate the chain and that the certificate names the host.</summary>
    VerifyFull,
}
