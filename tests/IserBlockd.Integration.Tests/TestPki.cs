using IserBlockd.TestSupport;

namespace IserBlockd.Integration.Tests;

/// <summary>A CA, a server certificate for localhost/127.0.0.1, a client certificate of the same CA and
/// one of another CA, in qemu's and libnbd's directory layouts.</summary>
internal sealed record TestPki(string Server, string Client, string ClientWithoutCertificate, string RogueClient)
{
    public static async Task<TestPki> CreateAsync(TempDirectory dir)
    {
        var script = """
            set -e
            ca() { openssl req -x509 -newkey rsa:2048 -nodes -keyout $1-key.pem -out $1-cert.pem -days 2 -subj /CN=$1 \
                     -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null; }
            leaf() { openssl req -newkey rsa:2048 -nodes -keyout $2-key.pem -out $2.csr -subj /CN=$3 2>/dev/null
                     printf "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=$4\nkeyUsage=critical,digitalSignature,keyEncipherment\n" > $2.ext
                     openssl x509 -req -in $2.csr -CA $1-cert.pem -CAkey $1-key.pem -CAcreateserial -out $2-cert.pem -days 2 -extfile $2.ext 2>/dev/null; }
            ca ca; ca rogue-ca
            leaf ca server localhost serverAuth; leaf ca client client clientAuth; leaf rogue-ca rogue client clientAuth
            mkdir server client client-nocert rogue
            cp ca-cert.pem server-cert.pem server-key.pem server/
            cp ca-cert.pem client-cert.pem client-key.pem client/
            cp ca-cert.pem client-nocert/
            cp ca-cert.pem rogue/; cp rogue-cert.pem rogue/client-cert.pem; cp rogue-key.pem rogue/client-key.pem
            """;
        var result = await ExternalProcess.RunAsync("/bin/sh", ["-c", $"cd '{dir.Path}' && {script}"], TimeSpan.FromMinutes(1));
        result.EnsureSuccess();
        return new TestPki(dir.File("server"), dir.File("client"), dir.File("client-nocert"), dir.File("rogue"));
    }
}
