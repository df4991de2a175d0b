using System.Security.Cryptography;
using System.Text;
using KvStore.Cdc.Protocol;
using KvStore.Cdc.Tests.Protocol;

namespace KvStore.Cdc.Tests;

public sealed class ProtocolHandshakeTests
{
    public static TheoryData<string> CaptureNames => [.. StreamCapture.Names];

    [Theory]
    [MemberData(nameof(CaptureNames))]
    public void Greeting_is_parsed_with_the_mariadb_prefix_and_a_20_byte_scramble(string name)
    {
        var capture = StreamCapture.Load(name);
        var handshake = InitialHandshake.Parse(capture.Hex("handshake_payload_hex"));

        Assert.Equal("5.5.5-10.11.19-MariaDB-0+deb12u1-log", handshake.Version.Text);
        Assert.True(handshake.Version.IsMariaDb);
        Assert.Equal((10, 11, 19), (handshake.Version.Major, handshake.Version.Minor, handshake.Version.Patch));
        Assert.Equal(capture.Hex("scramble_hex"), handshake.Scramble);
        Assert.Equal(20, handshake.Scramble.Length);
        Assert.Equal("mysql_native_password", handshake.AuthPluginName);
        Assert.Equal(0x81fff7feu, (uint)handshake.Capabilities);
        Assert.Equal(0x1du, handshake.MariaDbExtendedCapabilities);
        Assert.Equal(8, handshake.CharacterSet);
    }

    [Theory]
    [MemberData(nameof(CaptureNames))]
    public void Native_password_response_matches_the_captured_vector(string name)
    {
        var capture = StreamCapture.Load(name);
        var response = AuthenticationScrambles.NativePasswordResponse(capture.Hex("scramble_hex"), capture.Password);
        Assert.Equal(capture.Hex("native_auth_response_hex"), response);
    }

    [Theory]
    [MemberData(nameof(CaptureNames))]
    public void Handshake_response_is_byte_identical_to_the_capture(string name)
    {
        var capture = StreamCapture.Load(name);
        var handshake = InitialHandshake.Parse(capture.Hex("handshake_payload_hex"));
        var capabilities = HandshakeResponse.ClientCapabilities(handshake.Capabilities, useTls: false);
        var response = HandshakeResponse.Build(
            capabilities,
            "cdc",
            AuthenticationScrambles.NativePasswordResponse(handshake.Scramble, capture.Password),
            handshake.AuthPluginName);

        Assert.Equal(0x00088205u, (uint)capabilities);
        Assert.Equal(Convert.ToHexString(capture.Hex("handshake_response_payload_hex")), Convert.ToHexString(response));
    }

    [Fact]
    public void Ssl_request_is_the_first_32_bytes_of_the_response_with_client_ssl()
    {
        var capabilities = HandshakeResponse.ClientCapabilities((ProtocolCapabilities)0x81fff7fe, useTls: true);
        var request = HandshakeResponse.BuildSslRequest(capabilities);
        var response = HandshakeResponse.Build(capabilities, "u", [], "mysql_native_password");
        Assert.Equal(32, request.Length);
        Assert.Equal(request, response[..32]);
        Assert.Equal(0x00088A05u, BitConverter.ToUInt32(request));
    }

    [Fact]
    public void Empty_password_gives_empty_auth_responses()
    {
        Assert.Empty(AuthenticationScrambles.NativePasswordResponse(new byte[20], null));
        Assert.Empty(AuthenticationScrambles.CachingSha2Response(new byte[20], ""));
    }

    [Theory]
    [InlineData("cdcpass", "22492c3e32214b3875667e6664456c6f6738213b")]
    [InlineData("pässwörd with ünïcode", "0102030405060708090a0b0c0d0e0f1011121314")]
    [InlineData("x", "ffffffffffffffffffffffffffffffffffffffff")]
    public void Caching_sha2_response_matches_an_independent_computation(string password, string nonceHex)
    {
        var nonce = Convert.FromHexString(nonceHex);

        // Written from the MySQL docs, without the client's helpers:
        // XOR(SHA256(pw), SHA256(SHA256(SHA256(pw)) + nonce)).
        var pw = Encoding.UTF8.GetBytes(password);
        var hash1 = SHA256.HashData(pw);
        var hash2 = SHA256.HashData(hash1);
        var hash3 = SHA256.HashData([.. hash2, .. nonce]);
        var expected = hash1.Zip(hash3, (a, b) => (byte)(a ^ b)).ToArray();

        Assert.Equal(expected, AuthenticationScrambles.CachingSha2Response(nonce, password));

        // A nonce with the trailing NUL of the greeting gives the same proof.
        Assert.Equal(expected, AuthenticationScrambles.CachingSha2Response([.. nonce, 0], password));
    }

    [Fact]
    public void Caching_sha2_known_answer_vector()
    {
        // Computed outside .NET (Python hashlib) from the documented formula: password "secret", nonce 0x00..0x13.
        var nonce = Enumerable.Range(0, 20).Select(i => (byte)i).ToArray();
        Assert.Equal(
            "6C84C617EC1F26456A02C42ED7CB02ECA7D8511333F98BC9B31E5F68CE1665D5",
            Convert.ToHexString(AuthenticationScrambles.CachingSha2Response(nonce, "secret")));
    }

    [Fact]
    public void Rsa_full_auth_payload_decrypts_to_the_password_xor_nonce()
    {
        using var rsa = RSA.Create(2048);
        var pem = rsa.ExportSubjectPublicKeyInfoPem();
        var nonce = Enumerable.Range(1, 20).Select(i => (byte)(i * 7)).ToArray();
        const string password = "a password longer than the twenty byte nonce";

        foreach (var oaep in new[] { true, false })
        {
            var encrypted = AuthenticationScrambles.RsaEncryptedPassword(pem, nonce, password, oaep);
            var plain = rsa.Decrypt(encrypted, oaep ? RSAEncryptionPadding.OaepSHA1 : RSAEncryptionPadding.Pkcs1);
            var unmasked = plain.Select((b, i) => (byte)(b ^ nonce[i % nonce.Length])).ToArray();
            Assert.Equal(Encoding.UTF8.GetBytes(password + "\0"), unmasked);
        }
    }

    [Theory]
    [InlineData("5.5.5-10.11.19-MariaDB-0+deb12u1-log", true, 10, 11, 19)]
    [InlineData("11.4.2-MariaDB", true, 11, 4, 2)]
    [InlineData("8.0.36", false, 8, 0, 36)]
    [InlineData("8.4.0-commercial", false, 8, 4, 0)]
    [InlineData("5.7.23-log", false, 5, 7, 23)]
    public void Server_version_detects_the_flavour(string text, bool mariaDb, int major, int minor, int patch)
    {
        var version = ServerVersion.Parse(text);
        Assert.Equal(mariaDb, version.IsMariaDb);
        Assert.Equal((major, minor, patch), (version.Major, version.Minor, version.Patch));
        Assert.True(version.IsAtLeast(major, minor, patch));
        Assert.False(version.IsAtLeast(major, minor, patch + 1));
    }
}
