import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ConfigReader } from '@backstage/config';
import { CoreV1Api, V1Secret } from '@kubernetes/client-node';
import {
  createCaIssueIntermediateAction,
  createMeshActionDeps,
} from '@tailmesh/plugin-scaffolder-backend-module-mesh';
import {
  cacertsData,
  cacertsSecret,
  issueIntermediateCa,
  loadCa,
} from '@tailmesh/plugin-scaffolder-backend-module-mesh/testUtils';
import { ActionRun, expectNoSecrets, runAction } from '../../support/actions';
import { testbedAppConfig, testbedSecrets } from '../../support/meshConfig';
import { kubeConfig, testbed } from '../../support/testbed';

const run = promisify(execFile);

// cluster8 is this file's, and cluster22 (outside the mesh, never istiod) holds the Secret store;
// cluster6 is read in dry runs only (see support/clusterOwners.ts).
const cluster = 'cluster8';
const storeCluster = 'cluster22';
const SECRET_STORE = { namespace: 'tailmesh-ca', name: 'mesh-root-ca' };
const DAY_MS = 24 * 60 * 60 * 1000;

/** testbedConfig() with another root CA store (the shared one may hold another file's root). */
function configWithStore(store: { type: string; [key: string]: string }) {
  const appConfig = testbedAppConfig();
  return new ConfigReader({
    ...appConfig,
    mesh: { ...appConfig.mesh, ca: { store } },
  });
}

const core = (name: string) => kubeConfig(name).makeApiClient(CoreV1Api);
const readCacerts = () =>
  core(cluster).readNamespacedSecret({
    name: 'cacerts',
    namespace: 'istio-system',
  });
const decode = (secret: V1Secret, key: string) =>
  Buffer.from(secret.data?.[key] ?? '', 'base64').toString('utf8');

/** The base64 body of a PEM and each of its lines: any of them in a log is a leak. */
const pemBody = (pem: string) => {
  const lines = pem.split('\n').filter(l => l && !l.startsWith('-----'));
  return [lines.join(''), ...lines];
};

/** Runs openssl on certificate files in a private temp dir (no keys are written), removed after. */
async function withCertFiles<T>(
  files: Record<string, string>,
  fn: (dir: string) => Promise<T>,
): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tailmesh-ca-openssl-'));
  try {
    for (const [name, content] of Object.entries(files))
      fs.writeFileSync(path.join(dir, name), content, { mode: 0o600 });
    return await fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
const openssl = async (dir: string, args: string[]) =>
  (await run('openssl', args, { cwd: dir })).stdout;

describe('mesh:ca:issue-intermediate', () => {
  const storeDir = path.join(
    testbed().stateDir,
    'ca-intermediate-test',
    'mesh-root-ca',
  );
  const action = createCaIssueIntermediateAction(
    createMeshActionDeps(
      configWithStore({ type: 'file', directory: storeDir }),
    ),
  );
  const runs: ActionRun[] = [];
  const errors: string[] = [];
  const keyPems: string[] = [];
  const track = async (p: Promise<ActionRun>) => {
    const r = await p;
    runs.push(r);
    return r;
  };
  const failure = async (p: Promise<unknown>) => {
    const e = await p.then(
      () => undefined,
      err => err as Error,
    );
    if (!e) throw new Error('expected the action to fail');
    errors.push(e.message);
    return e.message;
  };
  const input = { cluster, createRootIfMissing: true };

  afterAll(async () => {
    // Whatever the order of failures above, every log, output and error is scanned.
    const texts = [
      ...runs.flatMap(r => [...r.logs, JSON.stringify(r.output)]),
      ...errors,
    ];
    expectNoSecrets(texts, [...keyPems.flatMap(pemBody), ...testbedSecrets()]);
  });

  it('refuses to start a mesh without createRootIfMissing, writing nothing', async () => {
    const message = await failure(runAction(action, { cluster }));
    expect(message).toBe(
      `root CA directory ${storeDir} holds no mesh root CA. To bootstrap a new mesh, run mesh:ca:issue-intermediate with createRootIfMissing: true for its first cluster; to join an existing mesh, point mesh.ca.store at that mesh's root`,
    );
    expect(fs.existsSync(storeDir)).toBe(false);
  });

  it('in a dry run, says the root would be created and shows cacerts redacted, writing nothing', async () => {
    const dry = await track(runAction(action, input, { dryRun: true }));
    expect(dry.output.rootCreated).toBe(true);
    expect(dry.output.changed).toBe(true);
    expect(dry.output.changes).toEqual(
      expect.arrayContaining([
        `root CA directory ${storeDir}: root CA created`,
        `${cluster}: Secret istio-system/cacerts created`,
      ]),
    );
    const manifests = dry.output.manifests as string;
    expect(manifests).toContain('kind: Secret');
    expect(manifests).toContain('ca-key.pem: <redacted>');
    expect(manifests).not.toContain('BEGIN');
    expect(fs.existsSync(storeDir)).toBe(false);
    await expect(readCacerts()).rejects.toMatchObject({ code: 404 });
  });

  it('creates the root (0700/0600) and a cacerts chain openssl accepts, as Istio tools/certs makes it', async () => {
    const first = await track(runAction(action, input));
    expect(first.output.changed).toBe(true);
    expect(first.output.rootCreated).toBe(true);

    expect(fs.statSync(storeDir).mode & 0o777).toBe(0o700);
    expect(fs.statSync(path.join(storeDir, 'root-key.pem')).mode & 0o777).toBe(
      0o600,
    );
    expect(fs.statSync(path.join(storeDir, 'root-cert.pem')).mode & 0o777).toBe(
      0o600,
    );
    expect(fs.readdirSync(storeDir).sort()).toEqual([
      'root-cert.pem',
      'root-key.pem',
    ]);
    const rootCertPem = fs.readFileSync(
      path.join(storeDir, 'root-cert.pem'),
      'utf8',
    );
    keyPems.push(fs.readFileSync(path.join(storeDir, 'root-key.pem'), 'utf8'));

    const secret = await readCacerts();
    expect(Object.keys(secret.data ?? {}).sort()).toEqual([
      'ca-cert.pem',
      'ca-key.pem',
      'cert-chain.pem',
      'root-cert.pem',
    ]);
    keyPems.push(decode(secret, 'ca-key.pem'));
    const caCert = decode(secret, 'ca-cert.pem');
    expect(decode(secret, 'root-cert.pem')).toBe(rootCertPem);
    expect(decode(secret, 'cert-chain.pem')).toBe(`${caCert}${rootCertPem}`);

    const intermediate = new X509Certificate(caCert);
    expect(first.output.intermediateNotAfter).toBe(
      new Date(intermediate.validTo).toISOString(),
    );
    // Istio's tools/certs/common.mk: INTERMEDIATE_DAYS 3650, capped at the root's end (the
    // root was made moments before, so a few seconds less).
    const root = new X509Certificate(rootCertPem);
    const lifetime =
      new Date(intermediate.validTo).getTime() -
      new Date(intermediate.validFrom).getTime();
    expect(lifetime).toBeLessThanOrEqual(3650 * DAY_MS);
    expect(lifetime).toBeGreaterThan(3650 * DAY_MS - 600_000);
    expect(new Date(intermediate.validTo).getTime()).toBeLessThanOrEqual(
      new Date(root.validTo).getTime(),
    );
    expect(
      new Date(root.validTo).getTime() - new Date(root.validFrom).getTime(),
    ).toBe(3650 * DAY_MS);
    expect(first.output.changes).toEqual([
      `root CA directory ${storeDir}: root CA created`,
      `${cluster}: Namespace istio-system created`,
      `${cluster}: Secret istio-system/cacerts created`,
      `${cluster}: intermediate CA ${intermediate.serialNumber} issued, valid until ${first.output.intermediateNotAfter}`,
    ]);

    await withCertFiles(
      {
        'root-cert.pem': rootCertPem,
        'ca-cert.pem': caCert,
        'cert-chain.pem': decode(secret, 'cert-chain.pem'),
      },
      async dir => {
        expect(
          await openssl(dir, [
            'verify',
            '-CAfile',
            'root-cert.pem',
            '-untrusted',
            'cert-chain.pem',
            'ca-cert.pem',
          ]),
        ).toBe('ca-cert.pem: OK\n');
        const fingerprint = await openssl(dir, [
          'x509',
          '-in',
          'root-cert.pem',
          '-noout',
          '-fingerprint',
          '-sha256',
        ]);
        expect(fingerprint.trim()).toBe(
          `sha256 Fingerprint=${first.output.rootFingerprint}`,
        );

        const rootText = await openssl(dir, [
          'x509',
          '-in',
          'root-cert.pem',
          '-noout',
          '-text',
        ]);
        expect(rootText).toMatch(/Subject: O = Istio, CN = Root CA\n/);
        expect(rootText).toMatch(/Issuer: O = Istio, CN = Root CA\n/);
        expect(rootText).toContain('Public-Key: (4096 bit)');
        expect(rootText).toMatch(
          /X509v3 Basic Constraints: critical\n\s+CA:TRUE\n/,
        );
        expect(rootText).toMatch(
          /X509v3 Key Usage: critical\n\s+Digital Signature, (Non Repudiation|Content Commitment), Key Encipherment, Certificate Sign\n/,
        );
        const rootSki =
          /X509v3 Subject Key Identifier: \n\s+([0-9A-F:]+)\n/.exec(
            rootText,
          )?.[1];
        expect(rootSki).toBeDefined();

        const text = await openssl(dir, [
          'x509',
          '-in',
          'ca-cert.pem',
          '-noout',
          '-text',
        ]);
        expect(text).toMatch(
          /Subject: O = Istio, CN = Intermediate CA, L = cluster8\n/,
        );
        expect(text).toMatch(/Issuer: O = Istio, CN = Root CA\n/);
        expect(text).toContain('Signature Algorithm: sha256WithRSAEncryption');
        expect(text).toContain('Public-Key: (4096 bit)');
        expect(text).toMatch(
          /X509v3 Basic Constraints: critical\n\s+CA:TRUE, pathlen:0\n/,
        );
        expect(text).toMatch(
          /X509v3 Key Usage: critical\n\s+Digital Signature, (Non Repudiation|Content Commitment), Key Encipherment, Certificate Sign\n/,
        );
        expect(text).toMatch(
          /X509v3 Subject Alternative Name: \n\s+DNS:istiod\.istio-system\.svc\n/,
        );
        expect(text).toMatch(
          /X509v3 Subject Key Identifier: \n\s+[0-9A-F:]+\n/,
        );
        expect(text).toMatch(
          new RegExp(
            `X509v3 Authority Key Identifier: \\n\\s+(keyid:)?${rootSki}\\n`,
          ),
        );
      },
    );
  });

  it('leaves a sound cacerts alone on a re-run: unchanged, same resourceVersion', async () => {
    const before = await readCacerts();
    const second = await track(runAction(action, input));
    expect(second.output.changed).toBe(false);
    expect(second.output.rootCreated).toBe(false);
    expect(second.output.changes).toEqual([
      `root CA directory ${storeDir}: root CA unchanged`,
      `${cluster}: Secret istio-system/cacerts unchanged`,
    ]);
    expect(second.logs.join('\n')).toContain(
      `${cluster}: Secret istio-system/cacerts unchanged`,
    );
    expect((await readCacerts()).metadata?.resourceVersion).toBe(
      before.metadata?.resourceVersion,
    );
  });

  it('never issues twice in one task: a retry after cacerts vanished stops; a new task reissues from the same root', async () => {
    const checkpoints = new Map<string, unknown>();
    const rootFingerprint =
      (runs[runs.length - 1].output.rootFingerprint as string) ?? '';
    await core(cluster).deleteNamespacedSecret({
      name: 'cacerts',
      namespace: 'istio-system',
    });
    const issued = await track(runAction(action, input, { checkpoints }));
    expect(issued.output.changed).toBe(true);
    const serial = new X509Certificate(
      decode(await readCacerts(), 'ca-cert.pem'),
    ).serialNumber;
    expect([...checkpoints.keys()]).toEqual([
      `mesh-ca-intermediate-${cluster}`,
    ]);
    // What the task database would keep: public facts only.
    expect(JSON.stringify([...checkpoints.values()])).not.toContain(
      'PRIVATE KEY',
    );
    keyPems.push(decode(await readCacerts(), 'ca-key.pem'));

    await core(cluster).deleteNamespacedSecret({
      name: 'cacerts',
      namespace: 'istio-system',
    });
    const message = await failure(runAction(action, input, { checkpoints }));
    expect(message).toBe(
      `${cluster}: this task already issued intermediate CA ${serial}, but Secret istio-system/cacerts no longer holds it; not issuing a second one in the same task. Start a new task to issue again`,
    );
    await expect(readCacerts()).rejects.toMatchObject({ code: 404 });

    const reissued = await track(runAction(action, input));
    expect(reissued.output.rootCreated).toBe(false);
    expect(reissued.output.rootFingerprint).toBe(rootFingerprint);
    const secret = await readCacerts();
    keyPems.push(decode(secret, 'ca-key.pem'));
    expect(
      new X509Certificate(decode(secret, 'ca-cert.pem')).serialNumber,
    ).not.toBe(serial);
  });

  it('renews an intermediate that expires within renewBeforeDays', async () => {
    const rootPem = {
      certPem: fs.readFileSync(path.join(storeDir, 'root-cert.pem'), 'utf8'),
      keyPem: fs.readFileSync(path.join(storeDir, 'root-key.pem'), 'utf8'),
    };
    const root = await loadCa(rootPem, 'the test root');
    const old = await issueIntermediateCa(
      root,
      cluster,
      new Date(Date.now() - 3640 * DAY_MS),
    );
    keyPems.push(old.keyPem);
    await core(cluster).replaceNamespacedSecret({
      name: 'cacerts',
      namespace: 'istio-system',
      body: cacertsSecret(cacertsData(old, rootPem.certPem)),
    });
    const renewed = await track(runAction(action, input));
    expect(renewed.output.changed).toBe(true);
    expect(renewed.logs.join('\n')).toContain(
      `its intermediate expires on ${old.notAfter.toISOString()}, within 30 days`,
    );
    const secret = await readCacerts();
    keyPems.push(decode(secret, 'ca-key.pem'));
    expect(
      new X509Certificate(decode(secret, 'ca-cert.pem')).serialNumber,
    ).not.toBe(old.serialNumber);
    expect(
      new Date(renewed.output.intermediateNotAfter as string).getTime(),
    ).toBeGreaterThan(Date.now() + 700 * DAY_MS);
  });

  it('shares the root with another cluster (dry run on cluster6)', async () => {
    const rootFingerprint = runs[runs.length - 1].output.rootFingerprint;
    const other = await track(
      runAction(
        action,
        { cluster: 'cluster6', createRootIfMissing: true },
        { dryRun: true },
      ),
    );
    expect(other.output.rootCreated).toBe(false);
    expect(other.output.rootFingerprint).toBe(rootFingerprint);
    expect(other.output.changes).toEqual(
      expect.arrayContaining([
        `root CA directory ${storeDir}: root CA unchanged`,
        'cluster6: Secret istio-system/cacerts created',
      ]),
    );
    await expect(
      core('cluster6').readNamespacedSecret({
        name: 'cacerts',
        namespace: 'istio-system',
      }),
    ).rejects.toMatchObject({ code: 404 });
  });

  it('refuses a Kubernetes Secret store in the cluster it issues for: peers could read the root key', async () => {
    const inItself = createCaIssueIntermediateAction(
      createMeshActionDeps(
        configWithStore({ type: 'kubernetesSecret', cluster, ...SECRET_STORE }),
      ),
    );
    const before = await readCacerts();
    const message = await failure(runAction(inItself, input));
    expect(message).toBe(
      `The mesh root CA is kept in cluster ${cluster} (mesh.ca.store), which is the cluster joining the mesh: every mesh peer can read that cluster's Secrets, the root's key included, through Istio's reader role. Nothing was changed. Keep the root in a cluster outside the mesh, or in a file store (mesh.ca.store.type: file)`,
    );
    expect((await readCacerts()).metadata?.resourceVersion).toBe(
      before.metadata?.resourceVersion,
    );
    await expect(
      core(cluster).readNamespace({ name: SECRET_STORE.namespace }),
    ).rejects.toMatchObject({ code: 404 });
  });

  it('refuses to replace a cacerts of another root unless adopted, then keeps the old one as a copy', async () => {
    const secretAction = createCaIssueIntermediateAction(
      createMeshActionDeps(
        configWithStore({
          type: 'kubernetesSecret',
          cluster: storeCluster,
          ...SECRET_STORE,
        }),
      ),
    );
    await expect(
      core(storeCluster).readNamespace({ name: SECRET_STORE.namespace }),
    ).rejects.toMatchObject({ code: 404 });
    const message = await failure(runAction(secretAction, { cluster }));
    expect(message).toContain(
      `root CA Secret tailmesh-ca/mesh-root-ca in cluster ${storeCluster} holds no mesh root CA`,
    );

    // cluster8's cacerts is of the file store's root: a new root would replace it.
    const old = await readCacerts();
    const refused = await failure(runAction(secretAction, input));
    expect(refused).toBe(
      `${cluster} already has Secret istio-system/cacerts, and root CA Secret tailmesh-ca/mesh-root-ca in cluster ${storeCluster} holds no mesh root: a new root would replace that CA and split the trust of every workload it signed. Nothing was changed. Point mesh.ca.store at the root that issued it, or run with adopt to replace it (the old Secret is kept as cacerts-replaced-<time>)`,
    );
    expect((await readCacerts()).metadata?.resourceVersion).toBe(
      old.metadata?.resourceVersion,
    );
    await expect(
      core(storeCluster).readNamespace({ name: SECRET_STORE.namespace }),
    ).rejects.toMatchObject({ code: 404 });

    const first = await track(
      runAction(secretAction, { ...input, adopt: true }),
    );
    expect(first.output.rootCreated).toBe(true);
    const store = await core(storeCluster).readNamespacedSecret(SECRET_STORE);
    keyPems.push(decode(store, 'root-key.pem'));
    const rootCertPem = decode(store, 'root-cert.pem');
    expect(first.output.rootFingerprint).toBe(
      new X509Certificate(rootCertPem).fingerprint256,
    );
    expect(first.logs.join('\n')).toMatch(
      /cluster8: adopting Secret istio-system\/cacerts \(Tailmesh made it; its root \(.*\) is not the mesh root .*\): the old Secret is kept as istio-system\/cacerts-replaced-/,
    );
    // The old CA, key included, is kept whole beside the new one.
    const copies = (
      await core(cluster).listNamespacedSecret({ namespace: 'istio-system' })
    ).items.filter(x => x.metadata?.name?.startsWith('cacerts-replaced-'));
    expect(copies).toHaveLength(1);
    expect(copies[0].data).toEqual(old.data);

    const secret = await readCacerts();
    keyPems.push(decode(secret, 'ca-key.pem'));
    expect(decode(secret, 'root-cert.pem')).toBe(rootCertPem);
    expect(
      secret.metadata?.annotations?.['tailmesh.dev/root-fingerprint'],
    ).toBe(first.output.rootFingerprint);
    await withCertFiles(
      {
        'root-cert.pem': rootCertPem,
        'ca-cert.pem': decode(secret, 'ca-cert.pem'),
        'cert-chain.pem': decode(secret, 'cert-chain.pem'),
      },
      async dir => {
        expect(
          await openssl(dir, [
            'verify',
            '-CAfile',
            'root-cert.pem',
            '-untrusted',
            'cert-chain.pem',
            'ca-cert.pem',
          ]),
        ).toBe('ca-cert.pem: OK\n');
      },
    );

    const again = await track(runAction(secretAction, input));
    expect(again.output.changed).toBe(false);
    expect(again.output.rootFingerprint).toBe(first.output.rootFingerprint);
    expect(
      (await core(storeCluster).readNamespacedSecret(SECRET_STORE)).metadata
        ?.resourceVersion,
    ).toBe(store.metadata?.resourceVersion);
  });
});
