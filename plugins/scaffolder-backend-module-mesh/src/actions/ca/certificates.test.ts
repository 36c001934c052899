import 'reflect-metadata';
import { createPrivateKey, webcrypto, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import {
  CaPem,
  fingerprintOf,
  generateRootCa,
  issueIntermediateCa,
  loadCa,
  splitCertificates,
} from './certificates';

// RSA-4096 key generation takes a second or two each.
jest.setTimeout(60_000);

describe('CA certificates', () => {
  const now = new Date('2030-01-01T00:00:00Z');
  let rootPem: CaPem;

  beforeAll(async () => {
    rootPem = await generateRootCa(now);
  });

  it('makes a root CA as Istio tools/certs does', () => {
    const cert = new X509Certificate(rootPem.certPem);
    expect(cert.subject).toBe('O=Istio\nCN=Root CA');
    expect(cert.issuer).toBe(cert.subject);
    expect(cert.ca).toBe(true);
    expect(cert.publicKey.asymmetricKeyDetails?.modulusLength).toBe(4096);
    expect(new Date(cert.validFrom).toISOString()).toBe(now.toISOString());
    expect(new Date(cert.validTo).toISOString()).toBe(
      '2039-12-30T00:00:00.000Z',
    );
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(rootPem.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
  });

  it('issues a cluster intermediate signed by the root, valid for 3650 days (Istio tools/certs/common.mk INTERMEDIATE_DAYS)', async () => {
    const root = await loadCa(rootPem, 'the test root', now);
    const issued = await issueIntermediateCa(root, 'east', now);
    const cert = new X509Certificate(issued.certPem);
    expect(cert.subject).toBe('O=Istio\nCN=Intermediate CA\nL=east');
    expect(cert.issuer).toBe('O=Istio\nCN=Root CA');
    expect(cert.ca).toBe(true);
    expect(cert.subjectAltName).toBe('DNS:istiod.istio-system.svc');
    expect(cert.checkIssued(root.cert)).toBe(true);
    expect(cert.verify(root.cert.publicKey)).toBe(true);
    expect(cert.publicKey.asymmetricKeyDetails?.modulusLength).toBe(4096);
    // 3650 days from now is the root's own end, which it never outlives.
    expect(issued.notAfter.toISOString()).toBe('2039-12-30T00:00:00.000Z');
    expect(issued.fingerprint).toBe(fingerprintOf(cert));
    expect(issued.fingerprint).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    expect(issued.serialNumber).toBe(cert.serialNumber);
    expect((await loadCa(issued, 'the intermediate', now)).fingerprint).toBe(
      issued.fingerprint,
    );
  });

  it('never lets an intermediate outlive its root', async () => {
    const lateNow = new Date('2039-06-01T00:00:00Z');
    const root = await loadCa(rootPem, 'the test root', lateNow);
    const issued = await issueIntermediateCa(root, 'east', lateNow);
    expect(issued.notAfter.toISOString()).toBe(
      new Date(root.cert.validTo).toISOString(),
    );
  });

  it('signs with an EC root brought by the user', async () => {
    const keys = await webcrypto.subtle.generateKey(
      { name: 'ECDSA', namedCurve: 'P-384' },
      true,
      ['sign', 'verify'],
    );
    const ecRoot = await x509.X509CertificateGenerator.createSelfSigned(
      {
        name: 'CN=Corporate Root',
        notBefore: now,
        notAfter: new Date('2040-01-01T00:00:00Z'),
        keys: keys as CryptoKeyPair,
        signingAlgorithm: { name: 'ECDSA', hash: 'SHA-384' },
        extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
      },
      webcrypto as unknown as Crypto,
    );
    const keyPem = createPrivateKey({
      key: Buffer.from(
        await webcrypto.subtle.exportKey('pkcs8', keys.privateKey),
      ),
      format: 'der',
      type: 'pkcs8',
    })
      .export({ type: 'pkcs8', format: 'pem' })
      .toString();
    const root = await loadCa(
      {
        certPem: new X509Certificate(Buffer.from(ecRoot.rawData)).toString(),
        keyPem,
      },
      'the EC root',
      now,
    );
    const issued = await issueIntermediateCa(root, 'east', now);
    const cert = new X509Certificate(issued.certPem);
    expect(cert.issuer).toBe('CN=Corporate Root');
    expect(cert.verify(root.cert.publicKey)).toBe(true);
    expect(cert.publicKey.asymmetricKeyType).toBe('rsa');
  });

  it('rejects broken, mismatched or expired material without quoting it', async () => {
    const other = await generateRootCa(now);
    await expect(
      loadCa({ certPem: 'nope', keyPem: rootPem.keyPem }, 'store X', now),
    ).rejects.toThrow('The certificate of store X is not a PEM certificate');
    await expect(
      loadCa({ certPem: rootPem.certPem, keyPem: 'nope' }, 'store X', now),
    ).rejects.toThrow(
      'The key of store X is not an unencrypted PEM private key',
    );
    await expect(
      loadCa(
        { certPem: rootPem.certPem, keyPem: other.keyPem },
        'store X',
        now,
      ),
    ).rejects.toThrow('The key of store X does not match its certificate');
    await expect(
      loadCa(rootPem, 'store X', new Date('2041-01-01T00:00:00Z')),
    ).rejects.toThrow(
      'The certificate of store X expired on 2039-12-30T00:00:00.000Z',
    );
  });

  it('splits a chain into its certificates in order', async () => {
    const root = await loadCa(rootPem, 'the test root', now);
    const issued = await issueIntermediateCa(root, 'west', now);
    const certs = splitCertificates(
      `${issued.certPem}${rootPem.certPem}`,
      'cert-chain.pem',
    );
    expect(certs.map(c => c.subject)).toEqual([
      'O=Istio\nCN=Intermediate CA\nL=west',
      'O=Istio\nCN=Root CA',
    ]);
  });
});
