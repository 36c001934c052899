// @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata';
import {
  createPrivateKey,
  KeyObject,
  randomBytes,
  webcrypto,
  X509Certificate,
} from 'node:crypto';
import * as x509 from '@peculiar/x509';
import {
  ISTIO_NAMESPACE,
  ISTIOD_DEPLOYMENT,
} from '@tailmesh/plugin-mesh-common';

// The values of Istio's tools/certs/common.mk, which Makefile.selfsigned.mk uses to make the
// root and the per-cluster intermediates of a plugged-in CA.
export const ROOT_CA_DAYS = 3650;
export const INTERMEDIATE_CA_DAYS = 3650;
export const CA_KEY_BITS = 4096;
export const CA_ORGANIZATION = 'Istio';
export const ROOT_CA_COMMON_NAME = 'Root CA';
export const INTERMEDIATE_CA_COMMON_NAME = 'Intermediate CA';
/** istiod's Service has the Deployment's name for the default revision. */
export const INTERMEDIATE_CA_SAN_DNS = `${ISTIOD_DEPLOYMENT}.${ISTIO_NAMESPACE}.svc`;
/** common.mk gives the root and the intermediate the same critical key usages. */
export const CA_KEY_USAGES =
  x509.KeyUsageFlags.digitalSignature |
  x509.KeyUsageFlags.nonRepudiation |
  x509.KeyUsageFlags.keyEncipherment |
  x509.KeyUsageFlags.keyCertSign;

export const DAY_MS = 24 * 60 * 60 * 1000;
// x509's parameters are typed with the DOM's Crypto; Node's implements the same interface.
const crypto = webcrypto as unknown as Crypto;
const RSA_ALGORITHM = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as const;

/**
 * A CA as PEM text: what the store and the cacerts Secret hold.
 *
 * @public
 */
export interface CaPem {
  certPem: string;
  keyPem: string;
}

/**
 * A CA ready to sign, loaded from its PEMs; the key exists only as a non-extractable CryptoKey.
 *
 * @public
 */
export interface LoadedCa {
  certPem: string;
  cert: X509Certificate;
  fingerprint: string;
  signingKey: CryptoKey;
  signingAlgorithm: Algorithm | EcdsaParams;
}

/**
 * A newly issued intermediate, with what may be recorded about it (everything but the key).
 *
 * @public
 */
export interface IssuedIntermediate extends CaPem {
  serialNumber: string;
  fingerprint: string;
  notAfter: Date;
}

/** SHA-256 of the certificate's DER as colon-separated uppercase hex, as `openssl x509 -fingerprint -sha256` prints it. */
export const fingerprintOf = (cert: X509Certificate): string =>
  cert.fingerprint256;

const daysAfter = (from: Date, days: number) =>
  new Date(from.getTime() + days * DAY_MS);

/** A positive, non-zero-led 128-bit serial, as random as openssl's -CAcreateserial. */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] & 0x7f) | 0x40;
  return bytes.toString('hex');
}

async function generateRsaKeys(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(
    {
      ...RSA_ALGORITHM,
      modulusLength: CA_KEY_BITS,
      publicExponent: new Uint8Array([1, 0, 1]),
    },
    true,
    ['sign', 'verify'],
  );
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await crypto.subtle.exportKey('pkcs8', key));
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
    .export({ type: 'pkcs8', format: 'pem' })
    .toString();
}

const certificatePem = (cert: x509.X509Certificate) =>
  new X509Certificate(Buffer.from(cert.rawData)).toString();

const EC_CURVES: Record<string, { namedCurve: string; hash: string }> = {
  prime256v1: { namedCurve: 'P-256', hash: 'SHA-256' },
  secp384r1: { namedCurve: 'P-384', hash: 'SHA-384' },
};

/** Imports a PEM private key as a signing-only CryptoKey; Istio's tools make RSA, users may bring EC. */
async function importSigningKey(
  key: KeyObject,
  what: string,
): Promise<{ key: CryptoKey; algorithm: Algorithm | EcdsaParams }> {
  const pkcs8 = key.export({ type: 'pkcs8', format: 'der' });
  if (key.asymmetricKeyType === 'rsa') {
    return {
      key: await crypto.subtle.importKey('pkcs8', pkcs8, RSA_ALGORITHM, false, [
        'sign',
      ]),
      algorithm: RSA_ALGORITHM,
    };
  }
  const curve =
    key.asymmetricKeyType === 'ec'
      ? EC_CURVES[key.asymmetricKeyDetails?.namedCurve ?? '']
      : undefined;
  if (curve) {
    const signingKey = await crypto.subtle.importKey(
      'pkcs8',
      pkcs8,
      { name: 'ECDSA', namedCurve: curve.namedCurve },
      false,
      ['sign'],
    );
    return { key: signingKey, algorithm: { name: 'ECDSA', hash: curve.hash } };
  }
  throw new Error(
    `${what}: unsupported key type; the key must be RSA or EC (P-256, P-384)`,
  );
}

/** Parses one PEM certificate; the message names the file, never its content. */
export function parseCertificate(pem: string, what: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch {
    throw new Error(`${what} is not a PEM certificate`);
  }
}

/** Parses a PEM private key; the message names the file, never its content. */
export function parsePrivateKey(pem: string, what: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch {
    throw new Error(`${what} is not an unencrypted PEM private key`);
  }
}

/**
 * Loads a CA from its PEMs and checks it can sign: a CA certificate, its key matching, not
 * expired at `now`. `what` names where it came from in errors.
 *
 * @public
 */
export async function loadCa(
  pem: CaPem,
  what: string,
  now: Date = new Date(),
): Promise<LoadedCa> {
  const cert = parseCertificate(pem.certPem, `The certificate of ${what}`);
  const privateKey = parsePrivateKey(pem.keyPem, `The key of ${what}`);
  if (!cert.ca)
    throw new Error(
      `The certificate of ${what} is not a CA certificate (basicConstraints CA:true)`,
    );
  if (!cert.checkPrivateKey(privateKey))
    throw new Error(`The key of ${what} does not match its certificate`);
  if (new Date(cert.validTo).getTime() <= now.getTime()) {
    throw new Error(
      `The certificate of ${what} expired on ${new Date(cert.validTo).toISOString()}`,
    );
  }
  const { key, algorithm } = await importSigningKey(
    privateKey,
    `The key of ${what}`,
  );
  return {
    certPem: pem.certPem,
    cert,
    fingerprint: fingerprintOf(cert),
    signingKey: key,
    signingAlgorithm: algorithm,
  };
}

/** A new self-signed root CA, as Makefile.selfsigned.mk's `root-ca` target makes it. */
export async function generateRootCa(now: Date = new Date()): Promise<CaPem> {
  const keys = await generateRsaKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: randomSerial(),
      name: [{ O: [CA_ORGANIZATION] }, { CN: [ROOT_CA_COMMON_NAME] }],
      notBefore: now,
      notAfter: daysAfter(now, ROOT_CA_DAYS),
      keys,
      signingAlgorithm: RSA_ALGORITHM,
      extensions: [
        await x509.SubjectKeyIdentifierExtension.create(
          keys.publicKey,
          false,
          crypto,
        ),
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(CA_KEY_USAGES, true),
      ],
    },
    crypto,
  );
  return {
    certPem: certificatePem(cert),
    keyPem: await privateKeyPem(keys.privateKey),
  };
}

/** The root's own key identifier, so the intermediate's AKI matches it whatever method made it. */
async function authorityKeyIdentifier(
  root: LoadedCa,
): Promise<x509.AuthorityKeyIdentifierExtension> {
  const rootCert = new x509.X509Certificate(root.cert.raw);
  const ski = rootCert.getExtension(x509.SubjectKeyIdentifierExtension);
  if (ski) return new x509.AuthorityKeyIdentifierExtension(ski.keyId);
  return x509.AuthorityKeyIdentifierExtension.create(
    rootCert.publicKey,
    false,
    crypto,
  );
}

/**
 * The intermediate CA of one cluster, signed by `root`, as Makefile.selfsigned.mk's
 * `<cluster>-cacerts` target makes it. It never outlives the root.
 *
 * @public
 */
export async function issueIntermediateCa(
  root: LoadedCa,
  cluster: string,
  now: Date = new Date(),
): Promise<IssuedIntermediate> {
  const keys = await generateRsaKeys();
  const rootNotAfter = new Date(root.cert.validTo);
  const wanted = daysAfter(now, INTERMEDIATE_CA_DAYS);
  const notAfter = wanted < rootNotAfter ? wanted : rootNotAfter;
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: [
        { O: [CA_ORGANIZATION] },
        { CN: [INTERMEDIATE_CA_COMMON_NAME] },
        { L: [cluster] },
      ],
      // The issuer is the root's subject exactly as encoded, so chain building matches it byte for byte.
      issuer: new x509.X509Certificate(root.cert.raw).subjectName,
      notBefore: now,
      notAfter,
      publicKey: keys.publicKey,
      signingKey: root.signingKey,
      signingAlgorithm: root.signingAlgorithm,
      extensions: [
        await x509.SubjectKeyIdentifierExtension.create(
          keys.publicKey,
          false,
          crypto,
        ),
        await authorityKeyIdentifier(root),
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(CA_KEY_USAGES, true),
        new x509.SubjectAlternativeNameExtension([
          { type: 'dns', value: INTERMEDIATE_CA_SAN_DNS },
        ]),
      ],
    },
    crypto,
  );
  const nodeCert = new X509Certificate(Buffer.from(cert.rawData));
  return {
    certPem: nodeCert.toString(),
    keyPem: await privateKeyPem(keys.privateKey),
    serialNumber: nodeCert.serialNumber,
    fingerprint: fingerprintOf(nodeCert),
    notAfter: new Date(nodeCert.validTo),
  };
}

/** Splits a PEM bundle into its certificates, in order. */
export function splitCertificates(
  bundle: string,
  what: string,
): X509Certificate[] {
  const blocks =
    bundle.match(
      /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g,
    ) ?? [];
  return blocks.map((block, i) =>
    parseCertificate(block, `Certificate ${i + 1} of ${what}`),
  );
}
