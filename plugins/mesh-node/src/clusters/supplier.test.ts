import { mockServices } from '@backstage/backend-test-utils';
import { ConfigReader } from '@backstage/config';
import { MeshClusterConnection } from './readClusterConfig';
import {
  clusterAccessFromSupplier,
  configMeshClustersSupplier,
} from './supplier';

const config = new ConfigReader({
  mesh: {
    clusters: [
      { name: 'east', url: 'https://east.example:6443', network: 'net-east' },
    ],
  },
});

describe('the cluster supplier', () => {
  it('by default gives the configured clusters, and errors name mesh.clusters', async () => {
    const access = await clusterAccessFromSupplier(
      configMeshClustersSupplier(config),
      config,
    );
    expect(access.names()).toEqual(['east']);
    expect(access.get('east').network).toBe('net-east');
    expect(() => access.get('west')).toThrow(
      'Unknown cluster "west": it is not in mesh.clusters (configured: east)',
    );
  });

  it("takes a host's own clusters, named by where they come from", async () => {
    const access = await clusterAccessFromSupplier(
      {
        source: 'the fleet registry',
        getClusters: async () => [
          {
            name: 'lab',
            url: 'https://lab.example',
            token: 't',
            skipTLSVerify: false,
          },
        ],
      },
      config,
    );
    expect(access.list().map(c => c.url)).toEqual(['https://lab.example']);
    expect(() => access.get('east')).toThrow(
      'Unknown cluster "east": it is not in the fleet registry (configured: lab)',
    );
  });

  it('checks supplied clusters as configured ones are, naming every problem and no secret', async () => {
    const supplied = [
      { name: 'Bad_Name', url: 'https://x.example', skipTLSVerify: false },
      {
        name: 'plain',
        url: 'http://plain.example',
        token: 'sekret-token',
        skipTLSVerify: false,
      },
      {
        name: 'dup',
        url: 'https://a.example',
        skipTLSVerify: false,
        zone: 'bad zone',
      },
      { name: 'dup', url: 'https://b.example', skipTLSVerify: false },
    ];
    const failure = clusterAccessFromSupplier(
      { getClusters: async () => supplied },
      config,
    );
    await expect(failure).rejects.toThrow(
      /^The mesh cluster supplier gave clusters Tailmesh cannot use:\nInvalid cluster "Bad_Name": name: .*\nInvalid cluster "plain": url: must be https.*\nInvalid cluster "dup": zone: .*\ncluster "dup" is supplied twice$/,
    );
    await expect(failure).rejects.not.toThrow(/sekret-token/);
  });

  describe('that tells of changes', () => {
    function changingSupplier(first: MeshClusterConnection[]) {
      let clusters = first;
      const listeners = new Set<() => void>();
      return {
        source: 'the fleet registry',
        getClusters: jest.fn(async () => clusters),
        subscribe(onChange: () => void) {
          listeners.add(onChange);
          return { unsubscribe: () => listeners.delete(onChange) };
        },
        set(next: MeshClusterConnection[]) {
          clusters = next;
          for (const l of listeners) l();
        },
        listening: () => listeners.size,
      };
    }
    const at = (name: string, token?: string): MeshClusterConnection => ({
      name,
      url: `https://${name}.example`,
      skipTLSVerify: false,
      ...(token ? { token } : {}),
    });
    const settled = () => new Promise(resolve => setImmediate(resolve));

    it('follows them: the access is updated and says what changed', async () => {
      const supplier = changingSupplier([at('east'), at('lab')]);
      const access = await clusterAccessFromSupplier(supplier, config);
      const heard = jest.fn();
      access.onChange(heard);
      supplier.set([at('east', 'rotated'), at('west')]);
      await settled();
      expect(access.names()).toEqual(['east', 'west']);
      expect(heard).toHaveBeenCalledWith({
        added: ['west'],
        removed: ['lab'],
        changed: ['east'],
      });
      access.close();
      expect(supplier.listening()).toBe(0);
    });

    it('keeps the clusters in use when the new list fails the checks, and logs why without a secret', async () => {
      const supplier = changingSupplier([at('east')]);
      const logger = mockServices.logger.mock();
      const access = await clusterAccessFromSupplier(supplier, config, {
        logger,
      });
      supplier.set([
        { ...at('plain', 'sekret-token'), url: 'http://plain.example' },
      ]);
      await settled();
      expect(access.names()).toEqual(['east']);
      const [[message]] = logger.error.mock.calls;
      expect(message).toMatch(
        /^Kept the clusters Tailmesh was using: reading the fleet registry again failed: The mesh cluster supplier gave clusters Tailmesh cannot use:\nInvalid cluster "plain": url: must be https/,
      );
      expect(message).not.toContain('sekret-token');
      access.close();
    });

    it('by default follows the configuration where Backstage watches it', async () => {
      let data = {
        mesh: { clusters: [{ name: 'east', url: 'https://east.example' }] },
      };
      const subscribers = new Set<() => void>();
      // The root config of a backend (backend-defaults' ObservableConfigProxy) has subscribe().
      const watched = Object.assign(new ConfigReader(data), {
        subscribe: (onChange: () => void) => {
          subscribers.add(onChange);
          return { unsubscribe: () => subscribers.delete(onChange) };
        },
      });
      const live = new Proxy(watched, {
        get: (target, key) =>
          key === 'subscribe'
            ? target.subscribe
            : Reflect.get(new ConfigReader(data), key),
      });
      const access = await clusterAccessFromSupplier(
        configMeshClustersSupplier(live),
        live,
      );
      data = {
        mesh: {
          clusters: [
            { name: 'east', url: 'https://east.example' },
            { name: 'west', url: 'https://west.example' },
          ],
        },
      };
      for (const s of subscribers) s();
      await settled();
      expect(access.names()).toEqual(['east', 'west']);
      access.close();
      expect(subscribers.size).toBe(0);
    });
  });
});
