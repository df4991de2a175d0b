using System.Security.Cryptography;
using System.Text;

namespace KvStore.Cdc.Protocol;

/// <summary>The password proofs of the supported authentication plugins.</summary>
internal static class AuthenticationScrambles
{
    public const string NativePassword = "mysql_native_password";
    public const string CachingSha2Password = "caching_sha2_password";
    public const string ClearPassword = "mysql_clear_password";

    /// <summary>
    /// mysql_native_password: <c>SHA1(pw) XOR SHA1(nonce20 || SHA1(SHA1(pw)))</c>; empty for an empty password.
    /// </summary>
    public static byte[] NativePasswordResponse(ReadOnlySpan<byte> nonce, string? password)
    {
        if (string.IsNullOrEmpty(password))
        {
            return [];
        }

        // SHA-1 is what the mysql_native_password protocol defines; servers that allow it expect exactly this.
#pragma warning disable CA5350
        Span<byte> stage1 = stackalloc byte[SHA1.HashSizeInBytes];
        Span<byte> stage2 = stackalloc byte[SHA1.HashSizeInBytes];
        SHA1.HashData(Encoding.UTF8.GetBytes(password), stage1);
        SHA1.HashData(stage1, stage2);
#pragma warning restore CA5350

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
        hash.AppendData(Nonce20(nonce));
        hash.AppendData(stage2);
        var result = hash.GetHashAndReset();
        Xor(result, stage1);
        return result;
    }

    /// <summary>
    /// caching_sha2_password fast-path proof:
    /// <c>SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) || nonce20)</c>; empty for an empty password.
    /// </summary>
    public static byte[] CachingSha2Response(ReadOnlySpan<byte> nonce, string? password)
    {
        if (string.IsNullOrEmpty(password))
        {
            return [];
        }

        Span<byte> stage1 = stackalloc byte[SHA256.HashSizeInBytes];
        Span<byte> stage2 = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(Encoding.UTF8.GetBytes(password), stage1);
        SHA256.HashData(stage1, stage2);

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(stage2);
        hash.AppendData(Nonce20(nonce));
        var result = hash.GetHashAndReset();
        Xor(result, stage1);
        return result;
    }

    /// <summary>The password as sent in clear over TLS: UTF-8 bytes plus a NUL.</summary>
    public static byte[] ClearPasswordResponse(string? password)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(password ?? string.Empty) + 1];
        Encoding.UTF8.GetBytes(password ?? string.Empty, bytes);
        return bytes;
    }

    /// <summary>
    /// caching_sha2_password full authentication without TLS: <c>(pw || 0x00) XOR nonce</c> (nonce repeated),
    /// RSA-encrypted with the server's public key. OAEP-SHA1 from MySQL 8.0.5 on, PKCS#1 v1.5 before.
    /// </summary>
    public static byte[] RsaEncryptedPassword(string publicKeyPem, ReadOnlySpan<byte> nonce, string? password, bool useOaep)
    {
        var plain = ClearPasswordResponse(password);
        var salt = Nonce20(nonce);
        for (var i = 0; i < plain.Length; i++)
        {
            plain[i] ^= salt[i % salt.Length];
        }

        using var rsa = RSA.Create();
        try
        {
            rsa.ImportFromPem(publicKeyPem);
        }
        catch (ArgumentException ex)
        {
            throw new ReplicationSetupException(ReplicationErrorCode.Authentication, "The server RSA public key is not a valid PEM public key.", ex);
        }

        var encrypted = rsa.Encrypt(plain, useOaep ? RSAEncryptionPadding.OaepSHA1 : RSAEncryptionPadding.Pkcs1);
        CryptographicOperations.ZeroMemory(plain);
        return encrypted;
    }

    // The nonce is 20 bytes; servers that send 21 include a trailing NUL we must not hash.
    private static ReadOnlySpan<byte> Nonce20(ReadOnlySpan<byte> nonce) => nonce.Length > 20 ? nonce[..20] : nonce;

    private static void Xor(Span<byte> target, ReadOnlySpan<byte> other)
    {
        for (var i = 0; i < target.Length; i++)
        {
            target[i] ^= other[i];
        }
    }
}
