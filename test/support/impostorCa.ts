import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CACERTS_KEYS } from '@tailmesh/plugin-mesh-common';
import { certificateFingerprint } from '@tailmesh/plugin-mesh-node';

/**
 * A member that plugged in a CA of its own: a complete, self-consistent `cacerts` Secret's data
 * (root, intermediate, key, chain; base64) from a fresh root that is not the mesh's. istiod
 * verifies the bundle before it swaps CAs (istio/istio security/pkg/pki/util/keycertbundle.go
 * VerifyAndSetAll), so only a consistent one reaches the `istio-ca-root-cert` ConfigMaps and the
 * workload certificates. The certificates follow tools/certs/common.mk in shape (pathlen:0, the
 * istiod SAN) but last `days` days, and the keys are RSA 2048 to keep the test quick.
 */
export function impostorCacerts(days: number): {
  data: Record<string, string>;
  rootFingerprint: string;
} {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'impostor-ca-'));
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) =>
    execFileSync('openssl', args, { stdio: 'pipe' });
  try {
    openssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      file('root-key.pem'),
      '-out',
      file('root-cert.pem'),
      '-days',
      String(days),
      '-subj',
      '/O=Not the mesh/CN=Impostor Root CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
    );
    openssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      file('ca-key.pem'),
      '-out',
      file('ca.csr'),
      '-subj',
      '/O=Not the mesh/CN=Impostor Intermediate CA',
    );
    fs.writeFileSync(
      file('ext.cnf'),
      [
        'basicConstraints=critical,CA:TRUE,pathlen:0',
        'keyUsage=critical,keyCertSign,cRLSign,digitalSignature,keyEncipherment',
        'subjectAltName=DNS:istiod.istio-system.svc',
      ].join('\n'),
    );
    openssl(
      'x509',
      '-req',
      '-in',
      file('ca.csr'),
      '-CA',
      file('root-cert.pem'),
      '-CAkey',
      file('root-key.pem'),
      '-CAcreateserial',
      '-days',
      String(days),
      '-extfile',
      file('ext.cnf'),
      '-out',
      file('ca-cert.pem'),
    );
    const root = fs.readFileSync(file('root-cert.pem'), 'utf8');
    const caCert = fs.readFileSync(file('ca-cert.pem'), 'utf8');
    const b64 = (text: string) => Buffer.from(text).toString('base64');
    return {
      data: {
        [CACERTS_KEYS.rootCert]: b64(root),
        [CACERTS_KEYS.caCert]: b64(caCert),
        [CACERTS_KEYS.caKey]: b64(fs.readFileSync(file('ca-key.pem'), 'utf8')),
        [CACERTS_KEYS.certChain]: b64(caCert + root),
      },
      rootFingerprint: certificateFingerprint(root),
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
