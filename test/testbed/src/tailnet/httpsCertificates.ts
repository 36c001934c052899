/*
 * Stand-in for the publicly trusted certificates that Tailscale nodes get for their MagicDNS names
 * when the tailnet has HTTPS turned on (tailscale.com/kb/1153): in the real system `tailscaled`
 * obtains them from Let's Encrypt over ACME (DNS-01, the TXT record set through the control plane).
 * The test bed has no internet, so this module is a small in-memory CA with the same shape of
 * result, and the test bed puts its root (`caPem`) in the trust store of the processes it runs, as
 * the public web PKI root would be there.
 *
 * Upstream followed (tailscale/tailscale v1.102.5):
 *  - `feature/acme/cert.go`: the node makes a fresh ECDSA P-256 key per certificate, asks for exactly
 *    one name (`resolveCertDomain`: the name must be one of the node's CertDomains; wildcards only
 *    with a node attribute), and renews once two thirds of the lifetime have passed
 *    (`domainRenewalTimeByExpiry`, "the officially-recommended best practice by Let's Encrypt");
 *  - `feature/acme/certstore.go`: the CSR has the name as subject CN and as the one DNS SAN; the key
 *    is stored as a SEC1 `EC PRIVATE KEY` PEM; the certificate PEM is the chain ACME returned
 *    (leaf first, then the issuing intermediate).
 *
 * Modeled: a root (public part only is exposed) and an intermediate that signs the leaves, as Let's
 * Encrypt's chains do; leaves for exactly one DNS name (CN and SAN), 90-day validity like Let's
 * Encrypt's default profile, notBefore backdated one hour as Let's Encrypt does for clock skew,
 * key usage digitalSignature, extended key usage serverAuth only, CA:false; issuance cached per
 * name and renewed at two thirds of the lifetime.
 * Not modeled: ACME itself (orders, challenges, rate limits), OCSP/CRL and AIA URLs, Certificate
 * Transparency SCTs, wildcard certificates, certificate profiles other than the default, P-384
 * intermediates (everything here is P-256 with SHA-256). Which names a node may have a certificate
 * for, and whether the tailnet's HTTPS setting is on, is the caller's decision (the tailnet layer),
 * as it is the control plane's in the real system.
 *
 * Private keys exist only in memory. The root's signing key is dropped once the intermediate is made.
 */
import { KeyObject, randomBytes, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';

/** A certificate for one DNS name: the key as SEC1 PEM, the chain (leaf, intermediate) as PEM. */
export interface TailnetCertificate {
  key: string;
  cert: string;
}

export interface TailnetCertificateAuthority {
  /** The root certificate, PEM: what clients must trust (public). */
  readonly caPem: string;
  /**
   * A certificate for exactly `fqdn` (lower-cased; one trailing dot is dropped, since tailcfg node
   * names carry one). The same certificate is returned until two thirds of its lifetime have passed.
   * Rejects a name that is not a plain multi-label DNS name (no wildcards, no IP addresses).
   */
  issue(fqdn: string): Promise<TailnetCertificate>;
}

export interface TailnetCertificateAuthorityOptions {
  /** Clock, for tests of validity and renewal; default `() => new Date()`. */
  now?: () => Date;
}

const DAY_MS = 24 * 60 * 60 * 1000;
const HOUR_MS = 60 * 60 * 1000;
/** Let's Encrypt's default (classic) profile. */
export const LEAF_VALIDITY_DAYS = 90;
const INTERMEDIATE_VALIDITY_DAYS = 3 * 365;
const ROOT_VALIDITY_DAYS = 10 * 365;
/** Let's Encrypt backdates notBefore by an hour so that clients with a slow clock accept new certs. */
const BACKDATE_MS = HOUR_MS;

// @peculiar/x509's parameters are typed with the DOM's Crypto; Node's webcrypto implements it.
const crypto = webcrypto as unknown as Crypto;
const EC_KEY = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;

const DNS_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** Lower-cases, drops one trailing dot, and checks that `fqdn` is a plain DNS name with 2+ labels. */
export function normalizeCertificateName(fqdn: string): string {
  const name = fqdn.toLowerCase().replace(/\.$/, '');
  if (name.startsWith('*.'))
    throw new Error(
      `invalid domain ${JSON.stringify(fqdn)}: wildcard certificates are not modeled`,
    );
  const labels = name.split('.');
  if (
    name.length > 253 ||
    labels.length < 2 ||
    isIP(name) !== 0 ||
    !labels.every(label => DNS_LABEL.test(label))
  ) {
    throw new Error(
      `invalid domain ${JSON.stringify(fqdn)}: want a DNS name such as host.tailnet.ts.net`,
    );
  }
  return name;
}

/** A positive 128-bit serial with a non-zero first byte, in hex. */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] & 0x7f) | 0x40;
  return bytes.toString('hex');
}

async function generateKeys(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify']);
}

/** tailscaled stores its certificate keys as SEC1 `EC PRIVATE KEY` PEM (certstore.go encodeECDSAKey). */
function sec1Pem(key: webcrypto.CryptoKey): string {
  return KeyObject.from(key).export({ type: 'sec1', format: 'pem' }).toString();
}

const pemOf = (cert: x509.X509Certificate) => cert.toString('pem');

interface CacheEntry {
  renewAt: number;
  certificate: Promise<TailnetCertificate>;
}

export async function createTailnetCertificateAuthority(
  options: TailnetCertificateAuthorityOptions = {},
): Promise<TailnetCertificateAuthority> {
  const now = options.now ?? (() => new Date());
  const start = now().getTime();

  const rootKeys = await generateKeys();
  const rootName =
    'CN=Tailmesh test bed tailnet HTTPS root, O=Tailmesh test bed (stand-in for the public web PKI)';
  const root = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: randomSerial(),
      name: rootName,
      notBefore: new Date(start - BACKDATE_MS),
      notAfter: new Date(start + ROOT_VALIDITY_DAYS * DAY_MS),
      keys: rootKeys,
      signingAlgorithm: SIGNING,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(
          rootKeys.publicKey,
          false,
          crypto,
        ),
      ],
    },
    crypto,
  );

  const issuerKeys = await generateKeys();
  const issuerName =
    'CN=Tailmesh test bed tailnet HTTPS issuer, O=Tailmesh test bed (stand-in for Lets Encrypt)';
  const issuer = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: issuerName,
      issuer: root.subject,
      notBefore: new Date(start - BACKDATE_MS),
      notAfter: new Date(start + INTERMEDIATE_VALIDITY_DAYS * DAY_MS),
      publicKey: issuerKeys.publicKey,
      signingKey: rootKeys.privateKey,
      signingAlgorithm: SIGNING,
      extensions: [
        // Let's Encrypt's intermediates may sign end-entity certificates only (path length 0).
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.digitalSignature |
            x509.KeyUsageFlags.keyCertSign |
            x509.KeyUsageFlags.cRLSign,
          true,
        ),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        await x509.SubjectKeyIdentifierExtension.create(
          issuerKeys.publicKey,
          false,
          crypto,
        ),
        await x509.AuthorityKeyIdentifierExtension.create(
          rootKeys.publicKey,
          false,
          crypto,
        ),
      ],
    },
    crypto,
  );
  const issuerPem = pemOf(issuer);
  const issuerKeyId = await x509.AuthorityKeyIdentifierExtension.create(
    issuerKeys.publicKey,
    false,
    crypto,
  );

  const cache = new Map<string, CacheEntry>();

  async function mint(name: string, from: number): Promise<TailnetCertificate> {
    const leafKeys = await generateKeys();
    const leaf = await x509.X509CertificateGenerator.create(
      {
        serialNumber: randomSerial(),
        subject: `CN=${name}`,
        issuer: issuer.subject,
        notBefore: new Date(from - BACKDATE_MS),
        notAfter: new Date(from - BACKDATE_MS + LEAF_VALIDITY_DAYS * DAY_MS),
        publicKey: leafKeys.publicKey,
        signingKey: issuerKeys.privateKey,
        signingAlgorithm: SIGNING,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(
            x509.KeyUsageFlags.digitalSignature,
            true,
          ),
          new x509.ExtendedKeyUsageExtension([
            x509.ExtendedKeyUsage.serverAuth,
          ]),
          await x509.SubjectKeyIdentifierExtension.create(
            leafKeys.publicKey,
            false,
            crypto,
          ),
          issuerKeyId,
          new x509.SubjectAlternativeNameExtension([
            { type: 'dns', value: name },
          ]),
        ],
      },
      crypto,
    );
    return {
      key: sec1Pem(leafKeys.privateKey as webcrypto.CryptoKey),
      cert: `${pemOf(leaf)}\n${issuerPem}\n`,
    };
  }

  return {
    caPem: `${pemOf(root)}\n`,
    issue(fqdn: string): Promise<TailnetCertificate> {
      let name: string;
      try {
        name = normalizeCertificateName(fqdn);
      } catch (err) {
        return Promise.reject(err);
      }
      const at = now().getTime();
      const cached = cache.get(name);
      if (cached && at < cached.renewAt) return cached.certificate;
      // Renew at two thirds of the lifetime, as tailscaled does (feature/acme/cert.go).
      const lifetime = LEAF_VALIDITY_DAYS * DAY_MS;
      const entry: CacheEntry = {
        renewAt: at - BACKDATE_MS + Math.floor((lifetime * 2) / 3),
        certificate: mint(name, at),
      };
      cache.set(name, entry);
      entry.certificate.catch(() => {
        if (cache.get(name) === entry) cache.delete(name);
      });
      return entry.certificate;
    },
  };
}
