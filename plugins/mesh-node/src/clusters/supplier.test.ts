import { ConfigReader } from '@backstage/config';
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
});
