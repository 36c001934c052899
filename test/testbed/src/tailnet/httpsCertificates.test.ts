import crypto, { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import {
  createTailnetCertificateAuthority,
  LEAF_VALIDITY_DAYS,
  normalizeCertificateName,
  type TailnetCertificateAuthority,
} from './httpsCertificates';

const NAME = 'operator-cluster1.tailmesh-test.ts.net';
const DAY_MS = 24 * 60 * 60 * 1000;

/** Splits a PEM bundle into its certificates, in order. */
function chainOf(pem: string): X509Certificate[] {
  return (
    pem.match(
      /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g,
    ) ?? []
  ).map(block => new X509Certificate(block));
}

/** Serves one TLS handshake with `cert` and reports how a client trusting `ca` and asking for `servername` fares. */
async function handshake(
  cert: { key: string; cert: string },
  ca: string,
  servername: string,
): Promise<'ok' | string> {
  const server = tls.createServer(cert, socket => socket.end());
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    return await new Promise(resolve => {
      const client = tls.connect({ host: '127.0.0.1', port, ca, servername });
      client.once('secureConnect', () => {
        client.destroy();
        resolve('ok');
      });
      client.once('error', (err: NodeJS.ErrnoException) =>
        resolve(err.code ?? err.message),
      );
    });
  } finally {
    server.close();
  }
}

describe('tailnet HTTPS certificate authority', () => {
  let clock: Date;
  let ca: TailnetCertificateAuthority;

  beforeAll(async () => {
    clock = new Date();
    ca = await createTailnetCertificateAuthority({ now: () => clock });
  });

  it('publishes a self-signed root CA certificate', () => {
    const root = new X509Certificate(ca.caPem);
    expect(root.ca).toBe(true);
    expect(root.checkIssued(root)).toBe(true);
    expect(root.verify(root.publicKey)).toBe(true);
    expect(ca.caPem).not.toMatch(/PRIVATE KEY/);
  });

  it('issues a leaf for exactly one DNS name, chained through an intermediate to the root', async () => {
    const issued = await ca.issue(NAME);
    expect(issued.key).toMatch(/^-----BEGIN EC PRIVATE KEY-----/);
    const [leaf, intermediate, ...rest] = chainOf(issued.cert);
    expect(rest).toEqual([]);
    const root = new X509Certificate(ca.caPem);

    expect(leaf.subjectAltName).toBe(`DNS:${NAME}`);
    expect(leaf.subject).toBe(`CN=${NAME}`);
    expect(leaf.ca).toBe(false);
    expect(leaf.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']); // serverAuth only
    expect(leaf.checkIssued(intermediate)).toBe(true);
    expect(leaf.verify(intermediate.publicKey)).toBe(true);
    expect(intermediate.ca).toBe(true);
    expect(intermediate.checkIssued(root)).toBe(true);
    expect(intermediate.verify(root.publicKey)).toBe(true);

    const key = crypto.createPrivateKey(issued.key);
    expect(key.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(
      crypto
        .createPublicKey(key)
        .export({ type: 'spki', format: 'der' })
        .equals(leaf.publicKey.export({ type: 'spki', format: 'der' })),
    ).toBe(true);
  });

  it("gives the leaf 90 days of validity, backdated an hour as Let's Encrypt does", async () => {
    const [leaf] = chainOf((await ca.issue(NAME)).cert);
    const notBefore = new Date(leaf.validFrom).getTime();
    const notAfter = new Date(leaf.validTo).getTime();
    expect(notAfter - notBefore).toBe(LEAF_VALIDITY_DAYS * DAY_MS);
    // Certificates carry whole seconds.
    expect(clock.getTime() - notBefore).toBeGreaterThanOrEqual(60 * 60 * 1000);
    expect(clock.getTime() - notBefore).toBeLessThan(60 * 60 * 1000 + 1000);
  });

  it('is trusted by a TLS client that trusts the root, for that name only', async () => {
    const issued = await ca.issue(NAME);
    expect(await handshake(issued, ca.caPem, NAME)).toBe('ok');
    expect(
      await handshake(issued, ca.caPem, 'other.tailmesh-test.ts.net'),
    ).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    const stranger = await createTailnetCertificateAuthority();
    expect(await handshake(issued, stranger.caPem, NAME)).toBe(
      'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
    );
  });

  it('caches per name (case and trailing dot do not matter) and renews at two thirds of the lifetime', async () => {
    const first = await ca.issue(NAME);
    expect(await ca.issue(`${NAME.toUpperCase()}.`)).toBe(first);
    const [a, b] = await Promise.all([
      ca.issue('fresh.tailmesh-test.ts.net'),
      ca.issue('fresh.tailmesh-test.ts.net'),
    ]);
    expect(a).toBe(b);
    expect(a.cert).not.toBe(first.cert);

    const issuedAt = clock;
    try {
      clock = new Date(issuedAt.getTime() + 59 * DAY_MS);
      expect(await ca.issue(NAME)).toBe(first);
      clock = new Date(issuedAt.getTime() + 60 * DAY_MS);
      const renewed = await ca.issue(NAME);
      expect(renewed).not.toBe(first);
      expect(chainOf(renewed.cert)[0].serialNumber).not.toBe(
        chainOf(first.cert)[0].serialNumber,
      );
      expect(renewed.key).not.toBe(first.key);
    } finally {
      clock = issuedAt;
    }
  });

  it('refuses names that are not plain DNS names', async () => {
    for (const bad of [
      '*.tailmesh-test.ts.net',
      '100.64.0.1',
      'localhost',
      'a..ts.net',
      '-a.tailmesh-test.ts.net',
      'under_score.ts.net',
      '',
    ]) {
      await expect(ca.issue(bad)).rejects.toThrow(/invalid domain/);
    }
    expect(normalizeCertificateName('Host.Tailnet.TS.net.')).toBe(
      'host.tailnet.ts.net',
    );
  });
});
