import { V1Namespace, V1Secret } from '@kubernetes/client-node';
import {
  ANNOTATION_INTERMEDIATE_NOT_AFTER,
  ANNOTATION_ROOT_FINGERPRINT,
  CACERTS_KEYS,
  CACERTS_SECRET,
  ISTIO_NAMESPACE,
  LABEL_MANAGED_BY,
  MANAGED_BY_TAILMESH,
} from '@tailmesh/plugin-mesh-common';
import {
  DAY_MS,
  fingerprintOf,
  LoadedCa,
  parseCertificate,
  parsePrivateKey,
  splitCertificates,
} from './certificates';

/**
 * What istiod reads from `cacerts`, as PEM text.
 *
 * @public
 */
export type CacertsData = Record<
  (typeof CACERTS_KEYS)[keyof typeof CACERTS_KEYS],
  string
>;

export type CacertsAssessment =
  | { keep: true; serialNumber: string; fingerprint: string; notAfter: Date }
  | {
      keep: false;
      reason: string;
      /**
       * Whether what is there is of the mesh root: an intermediate to renew. Otherwise (another
       * root, incomplete, unreadable) replacing it loses a CA key that is not the mesh's.
       */
      ofMeshRoot: boolean;
    };

/**
 * The data of `cacerts` for an intermediate and its root: the chain is intermediate then root.
 *
 * @public
 */
export function cacertsData(
  intermediate: { certPem: string; keyPem: string },
  rootCertPem: string,
): CacertsData {
  return {
    [CACERTS_KEYS.caCert]: intermediate.certPem,
    [CACERTS_KEYS.caKey]: intermediate.keyPem,
    [CACERTS_KEYS.rootCert]: rootCertPem,
    [CACERTS_KEYS.certChain]: `${intermediate.certPem}${rootCertPem}`,
  };
}

/**
 * The `cacerts` Secret; `data` is undefined for a dry run, which shows the keys only. With
 * `notAfter`, the intermediate's expiry is recorded in an annotation the mesh backend reads from
 * the Secret's metadata (it never reads the data, which holds the key).
 *
 * @public
 */
export function cacertsSecret(
  data?: CacertsData,
  notAfter?: Date,
  rootFingerprint?: string,
): V1Secret {
  const encoded = Object.fromEntries(
    Object.values(CACERTS_KEYS).map(key => [
      key,
      data ? Buffer.from(data[key]).toString('base64') : '',
    ]),
  );
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: CACERTS_SECRET,
      namespace: ISTIO_NAMESPACE,
      labels: { [LABEL_MANAGED_BY]: MANAGED_BY_TAILMESH },
      ...(notAfter
        ? {
            annotations: {
              [ANNOTATION_INTERMEDIATE_NOT_AFTER]: notAfter.toISOString(),
              ...(rootFingerprint
                ? { [ANNOTATION_ROOT_FINGERPRINT]: rootFingerprint }
                : {}),
            },
          }
        : {}),
    },
    type: 'Opaque',
    data: encoded,
  };
}

export const namespaceManifest = (name: string): V1Namespace => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name },
});

/** Decodes a Secret's base64 data; keys that are absent stay absent. */
export function decodeSecretData(
  secret: V1Secret | undefined,
): Record<string, string> | undefined {
  if (!secret) return undefined;
  return Object.fromEntries(
    Object.entries(secret.data ?? {}).map(([k, v]) => [
      k,
      Buffer.from(v, 'base64').toString('utf8'),
    ]),
  );
}

/**
 * Whether an existing `cacerts` can stay: it must be complete, consistent (chain, key), carry the
 * mesh root and an intermediate from it that is valid for more than `renewBeforeDays`. A new
 * intermediate makes istiod re-sign every workload, so a sound one is never replaced.
 */
export function assessCacerts(
  data: Record<string, string> | undefined,
  root: LoadedCa,
  now: Date,
  renewBeforeDays: number,
): CacertsAssessment {
  if (!data)
    return {
      keep: false,
      reason: `there is no Secret ${ISTIO_NAMESPACE}/${CACERTS_SECRET}`,
      ofMeshRoot: true,
    };
  const missing = Object.values(CACERTS_KEYS).filter(key => !data[key]);
  if (missing.length)
    return {
      keep: false,
      reason: `it lacks ${missing.join(', ')}`,
      ofMeshRoot: false,
    };
  try {
    const rootCert = parseCertificate(
      data[CACERTS_KEYS.rootCert],
      CACERTS_KEYS.rootCert,
    );
    if (fingerprintOf(rootCert) !== root.fingerprint) {
      return {
        keep: false,
        reason: `its root (${fingerprintOf(rootCert)}) is not the mesh root (${root.fingerprint})`,
        ofMeshRoot: false,
      };
    }
    const cert = parseCertificate(
      data[CACERTS_KEYS.caCert],
      CACERTS_KEYS.caCert,
    );
    if (
      !cert.ca ||
      !cert.checkIssued(root.cert) ||
      !cert.verify(root.cert.publicKey)
    ) {
      return {
        keep: false,
        reason: `its ${CACERTS_KEYS.caCert} is not a CA certificate issued by the mesh root`,
        ofMeshRoot: true,
      };
    }
    if (
      !cert.checkPrivateKey(
        parsePrivateKey(data[CACERTS_KEYS.caKey], CACERTS_KEYS.caKey),
      )
    ) {
      return {
        keep: false,
        reason: `its ${CACERTS_KEYS.caKey} does not match ${CACERTS_KEYS.caCert}`,
        ofMeshRoot: true,
      };
    }
    const chain = splitCertificates(
      data[CACERTS_KEYS.certChain],
      CACERTS_KEYS.certChain,
    );
    if (
      chain.length !== 2 ||
      !chain[0].raw.equals(cert.raw) ||
      !chain[1].raw.equals(rootCert.raw)
    ) {
      return {
        keep: false,
        reason: `its ${CACERTS_KEYS.certChain} is not ${CACERTS_KEYS.caCert} followed by ${CACERTS_KEYS.rootCert}`,
        ofMeshRoot: true,
      };
    }
    const notAfter = new Date(cert.validTo);
    if (new Date(cert.validFrom).getTime() > now.getTime()) {
      return {
        keep: false,
        reason: `its intermediate is not valid before ${new Date(cert.validFrom).toISOString()}`,
        ofMeshRoot: true,
      };
    }
    if (notAfter.getTime() - now.getTime() <= renewBeforeDays * DAY_MS) {
      return {
        keep: false,
        reason: `its intermediate expires on ${notAfter.toISOString()}, within ${renewBeforeDays} days`,
        ofMeshRoot: true,
      };
    }
    return {
      keep: true,
      serialNumber: cert.serialNumber,
      fingerprint: fingerprintOf(cert),
      notAfter,
    };
  } catch (e) {
    return {
      keep: false,
      reason: `it cannot be read: ${(e as Error).message}`,
      ofMeshRoot: false,
    };
  }
}
