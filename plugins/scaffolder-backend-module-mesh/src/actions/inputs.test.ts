import { ConfigReader } from '@backstage/config';
import { assertClusterList, checkPeers, resolveTailnet } from './inputs';

describe('checkPeers', () => {
  it('rejects the cluster itself, duplicates and invalid names', () => {
    expect(() => checkPeers('east', ['west', 'north'])).not.toThrow();
    expect(() => checkPeers('east', ['west', 'east'])).toThrow(
      'peers must not include the cluster itself ("east")',
    );
    expect(() => checkPeers('east', ['west', 'west'])).toThrow(
      'peers lists "west" more than once',
    );
    expect(() => checkPeers('east', ['West'])).toThrow(
      /Invalid input: peers "West"/,
    );
  });

  it('needs at least one peer', () => {
    expect(() => checkPeers('east', [])).toThrow(
      'Invalid input: peers must list at least one cluster',
    );
  });

  it('lists every problem in one error', () => {
    expect(() => checkPeers('East_1', ['west', 'west', 'East_1'])).toThrow(
      /^Invalid input: cluster "East_1": .*; peers "East_1": .*; peers must not include the cluster itself \("East_1"\); peers lists "west" more than once$/,
    );
  });
});

describe('assertClusterList', () => {
  it('rejects an empty list and a cluster named twice', () => {
    expect(() => assertClusterList('members', ['east', 'west'])).not.toThrow();
    expect(() => assertClusterList('members', [])).toThrow(
      'Invalid input: members must list at least one cluster',
    );
    expect(() =>
      assertClusterList('members', ['east', 'west', 'east', 'west']),
    ).toThrow('Invalid input: members lists "east", "west" more than once');
  });
});

describe('resolveTailnet', () => {
  const configured = new ConfigReader({
    mesh: { tailscale: { dnsName: 'tail1234.ts.net' } },
  });

  it('comes from mesh.tailscale.dnsName; an input may only repeat it', () => {
    expect(resolveTailnet(configured)).toBe('tail1234.ts.net');
    expect(resolveTailnet(configured, undefined)).toBe('tail1234.ts.net');
    expect(resolveTailnet(configured, 'tail1234.ts.net')).toBe(
      'tail1234.ts.net',
    );
  });

  it('refuses an input other than the configured tailnet', () => {
    // Each would redirect what the mesh writes: in-cluster DNS, or remote secrets' servers.
    for (const other of [
      'tail9999.ts.net',
      'cluster.local',
      'evil.example.com',
    ]) {
      expect(() => resolveTailnet(configured, other)).toThrow(
        `Invalid input: tailnet "${other}" is not the configured tailnet "tail1234.ts.net" (mesh.tailscale.dnsName); the tailnet comes from configuration, an input may only repeat it`,
      );
    }
  });

  it('needs the configuration, and a valid one', () => {
    expect(() =>
      resolveTailnet(new ConfigReader({}), 'tail1234.ts.net'),
    ).toThrow(/^No tailnet configured: set mesh.tailscale.dnsName/);
    expect(() =>
      resolveTailnet(
        new ConfigReader({ mesh: { tailscale: { dnsName: 'localhost' } } }),
      ),
    ).toThrow(/Invalid input: tailnet "localhost"/);
  });
});
