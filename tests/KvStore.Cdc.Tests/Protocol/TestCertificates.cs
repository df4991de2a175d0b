using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace KvStore.Cdc.Tests.Protocol;

/// <summary>A throwaway CA and a server certificate it signed, generated in-process.</summary>
internal sealed class TestCertificates : IDisposable
{
    private TestCertificates(X509Certificate2 ca, X509Certificate2 server, string caPemPath)
    {
        Ca = ca;
        Server = server;
        CaPemPath = caPemPath;
    }

    public X509Certificate2 Ca { get; }

    /// <summary>Server certificate with its private key.</summary>
    public X509Certificate2 Server { get; }

    /// <summary>The CA certificate as a PEM file.</summary>
    public string CaPemPath { get; }

    public static TestCertificates Create(string[] dnsNames, IPAddress[] addresses)
    {
        var now = DateTimeOffset.UtcNow;
        using var caKey = RSA.Create(2048);
        var caRequest = new CertificateRequest("CN=KvStore Test CA", caKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        var ca = caRequest.CreateSelfSigned(now.AddDays(-1), now.AddDays(30));

        using var serverKey = RSA.Create(2048);
        var request = new CertificateRequest("CN=" + (dnsNames.FirstOrDefault() ?? "server"), serverKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        foreach (var name in dnsNames)
        {
            san.AddDnsName(name);
        }

        foreach (var address in addresses)
        {
            san.AddIpAddress(address);
        }

        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var signed = request.Create(ca, now.AddDays(-1), now.AddDays(30), RandomNumberGenerator.GetBytes(12));
        using var withKey = signed.CopyWithPrivateKey(serverKey);
        var server = X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);

        var caPath = Path.Combine(Path.GetTempPath(), $"kvstore-test-ca-{Guid.NewGuid():N}.pem");
        File.WriteAllText(caPath, ca.ExportCertificatePem());
        return new TestCertificates(ca, server, caPath);
    }

    /// <summary>Writes the server certificate and its PKCS#8 key as PEM files (for mariadbd's ssl_cert/ssl_key).</summary>
    public (string CertificatePath, string KeyPath) WriteServerPem(string directory)
    {
        var certificatePath = Path.Combine(directory, "server-cert.pem");
        var keyPath = Path.Combine(directory, "server-key.pem");
        File.WriteAllText(certificatePath, Server.ExportCertificatePem());
        using var key = Server.GetRSAPrivateKey()!;
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
        return (certificatePath, keyPath);
    }

    public void Dispose()
    {
        Ca.Dispose();
        Server.Dispose();
        File.Delete(CaPemPath);
    }
}
