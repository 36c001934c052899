import { CACERTS_KEYS } from '@tailmesh/plugin-mesh-common';
import {
  assessCacerts,
  cacertsData,
  cacertsSecret,
  decodeSecretData,
} from './cacerts';
import {
  CaPem,
  generateRootCa,
  IssuedIntermediate,
  issueIntermediateCa,
  LoadedCa,
  loadCa,
} from './certificates';

jest.setTimeout(60_000);

describe('cacerts', () => {
  const now = new Date('2030-01-01T00:00:00Z');
  let rootPem: CaPem;
  let root: LoadedCa;
  let otherRoot: LoadedCa;
  let intermediate: IssuedIntermediate;

  beforeAll(async () => {
    rootPem = await generateRootCa(now);
    root = await loadCa(rootPem, 'root', now);
    otherRoot = await loadCa(await generateRootCa(now), 'other root', now);
    intermediate = await issueIntermediateCa(root, 'east', now);
  });

  const data = () => cacertsData(intermediate, rootPem.certPem);

  it('holds the intermediate, its key, the root and the chain (intermediate then root)', () => {
    const d = data();
    expect(Object.keys(d).sort()).toEqual([
      'ca-cert.pem',
      'ca-key.pem',
      'cert-chain.pem',
      'root-cert.pem',
    ]);
    expect(d[CACERTS_KEYS.certChain]).toBe(
      `${intermediate.certPem}${rootPem.certPem}`,
    );
    const secret = cacertsSecret(d);
    expect(secret.metadata).toMatchObject({
      name: 'cacerts',
      namespace: 'istio-system',
    });
    expect(decodeSecretData(secret)).toEqual(d);
  });

  it('shows only the keys in a dry run', () => {
    expect(cacertsSecret().data).toEqual({
      'ca-cert.pem': '',
      'ca-key.pem': '',
      'root-cert.pem': '',
      'cert-chain.pem': '',
    });
  });

  it('keeps a sound intermediate from the mesh root', () => {
    expect(assessCacerts(data(), root, now, 30)).toEqual({
      keep: true,
      serialNumber: intermediate.serialNumber,
      fingerprint: intermediate.fingerprint,
      notAfter: intermediate.notAfter,
    });
  });

  it('renews one that expires within the threshold', () => {
    const late = new Date(
      intermediate.notAfter.getTime() - 10 * 24 * 3600 * 1000,
    );
    expect(assessCacerts(data(), root, late, 30)).toEqual({
      keep: false,
      ofMeshRoot: true,
      reason: `its intermediate expires on ${intermediate.notAfter.toISOString()}, within 30 days`,
    });
    expect(assessCacerts(data(), root, late, 5).keep).toBe(true);
  });

  it('replaces an absent, incomplete, foreign or inconsistent cacerts, saying why', () => {
    const reason = (
      d: Record<string, string> | undefined,
      r: LoadedCa = root,
    ) => {
      const a = assessCacerts(d, r, now, 30);
      return a.keep ? 'kept' : a.reason;
    };
    expect(reason(undefined)).toBe('there is no Secret istio-system/cacerts');
    expect(reason({ ...data(), [CACERTS_KEYS.caKey]: '' })).toBe(
      'it lacks ca-key.pem',
    );
    expect(reason(data(), otherRoot)).toMatch(
      /^its root \(([0-9A-F:]+)\) is not the mesh root/,
    );
    expect(
      reason({ ...cacertsData(intermediate, otherRoot.certPem) }, otherRoot),
    ).toBe('its ca-cert.pem is not a CA certificate issued by the mesh root');
    expect(reason({ ...data(), [CACERTS_KEYS.caKey]: rootPem.keyPem })).toBe(
      'its ca-key.pem does not match ca-cert.pem',
    );
    expect(
      reason({ ...data(), [CACERTS_KEYS.certChain]: intermediate.certPem }),
    ).toBe('its cert-chain.pem is not ca-cert.pem followed by root-cert.pem');
    expect(reason({ ...data(), [CACERTS_KEYS.caCert]: 'garbage' })).toBe(
      'it cannot be read: ca-cert.pem is not a PEM certificate',
    );
  });

  it('never quotes key material in a reason', () => {
    const a = assessCacerts(
      { ...data(), [CACERTS_KEYS.caKey]: 'not a key' },
      root,
      now,
      30,
    );
    expect(a).toEqual({
      keep: false,
      ofMeshRoot: false,
      reason:
        'it cannot be read: ca-key.pem is not an unencrypted PEM private key',
    });
  });
});
