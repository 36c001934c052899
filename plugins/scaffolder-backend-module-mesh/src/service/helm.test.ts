import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  mergeValues,
  parseHelmTime,
  redactSecretManifests,
  sweepAbandonedHelmDirs,
} from './helm';

/** The istiod release values as a deployed release keeps them, with two peers in meshNetworks. */
const deployed = () => ({
  revision: '',
  pilot: { resources: { requests: { cpu: '500m', memory: '2Gi' } } },
  global: {
    meshID: 'mesh1',
    network: 'east-net',
    hub: 'docker.io/istio',
    meshNetworks: {
      'east-net': { endpoints: [{ fromRegistry: 'east' }], gateways: [] },
      'west-net': {
        endpoints: [{ fromRegistry: 'west' }],
        gateways: [{ address: 'west-gw.tailnet.ts.net', port: 15443 }],
      },
    },
  },
});

describe('mergeValues', () => {
  it('merges objects key by key, keeping keys only the deployed values have', () => {
    expect(
      mergeValues(deployed(), {
        global: { network: 'east-net-2' },
        pilot: { env: { PILOT_ENABLE_X: 'true' } },
      }),
    ).toEqual({
      revision: '',
      pilot: {
        resources: { requests: { cpu: '500m', memory: '2Gi' } },
        env: { PILOT_ENABLE_X: 'true' },
      },
      global: {
        meshID: 'mesh1',
        network: 'east-net-2',
        hub: 'docker.io/istio',
        meshNetworks: deployed().global.meshNetworks,
      },
    });
  });

  it('takes arrays and scalars from ours whole, never element by element', () => {
    const merged = mergeValues(
      {
        list: [1, 2, 3],
        name: 'theirs',
        flag: true,
        nested: { ports: [80, 443] },
      },
      { list: [9], name: 'ours', flag: false, nested: { ports: [] } },
    );
    expect(merged).toEqual({
      list: [9],
      name: 'ours',
      flag: false,
      nested: { ports: [] },
    });
  });

  it('lets ours replace an object with a scalar, an array or null, and a scalar with an object', () => {
    expect(
      mergeValues(
        { a: { x: 1 }, b: { y: 2 }, c: { z: 3 }, d: 'text' },
        { a: 'flat', b: ['one'], c: null, d: { now: 'an object' } },
      ),
    ).toEqual({ a: 'flat', b: ['one'], c: null, d: { now: 'an object' } });
  });

  it('without replace paths, keeps a network that ours no longer lists (why replace exists)', () => {
    const merged = mergeValues(deployed(), {
      global: {
        meshNetworks: {
          'east-net': { endpoints: [{ fromRegistry: 'east' }], gateways: [] },
        },
      },
    });
    expect(Object.keys(merged.global as Record<string, unknown>)).toContain(
      'meshNetworks',
    );
    expect(
      Object.keys(
        (merged.global as { meshNetworks: Record<string, unknown> })
          .meshNetworks,
      ).sort(),
    ).toEqual(['east-net', 'west-net']);
  });

  it('replaces a replace path whole: a network removed from ours does not survive', () => {
    const ours = {
      global: {
        meshNetworks: {
          'east-net': { endpoints: [{ fromRegistry: 'east' }], gateways: [] },
        },
      },
    };
    expect(mergeValues(deployed(), ours, [['global', 'meshNetworks']])).toEqual(
      {
        ...deployed(),
        global: {
          meshID: 'mesh1',
          network: 'east-net',
          hub: 'docker.io/istio',
          meshNetworks: {
            'east-net': { endpoints: [{ fromRegistry: 'east' }], gateways: [] },
          },
        },
      },
    );
  });

  it('replaces an entry inside a replace path whole too: no deployed field leaks into it', () => {
    const merged = mergeValues(
      deployed(),
      {
        global: {
          meshNetworks: {
            'west-net': { endpoints: [{ fromRegistry: 'west' }] },
          },
        },
      },
      [['global', 'meshNetworks']],
    );
    expect((merged.global as { meshNetworks: unknown }).meshNetworks).toEqual({
      'west-net': { endpoints: [{ fromRegistry: 'west' }] },
    });
  });

  it('matches replace paths exactly: neither a prefix nor the same key elsewhere replaces', () => {
    const theirs = {
      global: { meshNetworks: { a: { x: 1 } }, keep: 'yes' },
      meshNetworks: { a: { x: 1 }, b: { y: 2 } },
    };
    const ours = {
      global: { meshNetworks: { c: { z: 3 } } },
      meshNetworks: { c: { z: 3 } },
    };
    expect(
      mergeValues(theirs, ours, [['global', 'meshNetworks', 'c', 'z']]),
    ).toEqual({
      global: { meshNetworks: { a: { x: 1 }, c: { z: 3 } }, keep: 'yes' },
      meshNetworks: { a: { x: 1 }, b: { y: 2 }, c: { z: 3 } },
    });
    expect(mergeValues(theirs, ours, [['global']])).toEqual({
      global: { meshNetworks: { c: { z: 3 } } },
      meshNetworks: { a: { x: 1 }, b: { y: 2 }, c: { z: 3 } },
    });
  });

  it('takes a replace path from ours even when the deployed values lack it', () => {
    expect(
      mergeValues({ global: { hub: 'h' } }, { global: { meshNetworks: {} } }, [
        ['global', 'meshNetworks'],
      ]),
    ).toEqual({ global: { hub: 'h', meshNetworks: {} } });
  });

  it('leaves a deployed replace path alone when ours does not set it', () => {
    expect(
      mergeValues(deployed(), { global: { network: 'east-net' } }, [
        ['global', 'meshNetworks'],
      ]),
    ).toEqual(deployed());
  });

  it('does not change its arguments', () => {
    const theirs = deployed();
    const ours = { global: { network: 'n2', meshNetworks: {} } };
    mergeValues(theirs, ours, [['global', 'meshNetworks']]);
    expect(theirs).toEqual(deployed());
    expect(ours).toEqual({ global: { network: 'n2', meshNetworks: {} } });
  });
});

describe('redactSecretManifests', () => {
  it("hides a Secret's data and every annotation that may copy it, and leaves other kinds alone", () => {
    const kubeconfig =
      'apiVersion: v1\nkind: Config\nusers: [{name: x, user: {token: abc}}]';
    const manifests = [
      'apiVersion: v1',
      'kind: Secret',
      'metadata:',
      '  name: istio-remote-secret-west',
      '  annotations:',
      `    kubectl.kubernetes.io/last-applied-configuration: ${JSON.stringify(JSON.stringify({ stringData: { west: kubeconfig } }))}`,
      '    networking.istio.io/cluster: west',
      '    tailmesh.dev/intermediate-not-after: "2036-01-01T00:00:00.000Z"',
      'stringData:',
      `  west: ${JSON.stringify(kubeconfig)}`,
      '---',
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata:',
      '  name: istio',
      '  annotations: {note: kept}',
      'data: {mesh: "x"}',
    ].join('\n');
    const shown = redactSecretManifests(manifests);
    expect(shown).not.toContain('abc');
    expect(shown).not.toContain('users');
    expect(shown).toContain(
      'kubectl.kubernetes.io/last-applied-configuration: <redacted>',
    );
    expect(shown).toContain('networking.istio.io/cluster: west');
    expect(shown).toContain(
      'tailmesh.dev/intermediate-not-after: 2036-01-01T00:00:00.000Z',
    );
    expect(shown).toContain('west: <redacted>');
    expect(shown).toContain('note: kept');
    expect(shown).toContain('mesh: x');
  });
});

describe('parseHelmTime', () => {
  it('reads the time helm list prints, with its offset', () => {
    expect(parseHelmTime('2026-12-03 12:00:00.123456789 +0000 UTC')).toBe(
      Date.parse('2026-12-03T12:00:00.123Z'),
    );
    expect(parseHelmTime('2026-12-03 13:00:00 +0100 CET')).toBe(
      Date.parse('2026-12-03T12:00:00Z'),
    );
    expect(parseHelmTime('yesterday')).toBeNaN();
  });
});

describe('sweepAbandonedHelmDirs', () => {
  it("removes the credential dirs of processes that are gone, never a live process's", async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sweep-test-'));
    try {
      // A pid that cannot be running: above Linux's pid_max limit (2^22).
      const dead = path.join(tmp, 'tailmesh-helm-4194399-abc123');
      const mine = path.join(tmp, `tailmesh-helm-${process.pid}-def456`);
      const parent = path.join(tmp, `tailmesh-helm-${process.ppid}-ghi789`);
      const other = path.join(tmp, 'someone-else-4194399-x');
      for (const dir of [dead, mine, parent, other]) {
        fs.mkdirSync(dir, { mode: 0o700 });
        fs.writeFileSync(path.join(dir, 'kubeconfig'), 'token: x', {
          mode: 0o600,
        });
      }
      expect(await sweepAbandonedHelmDirs(tmp)).toEqual([dead]);
      expect(fs.existsSync(dead)).toBe(false);
      for (const dir of [mine, parent, other])
        expect(fs.existsSync(dir)).toBe(true);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
