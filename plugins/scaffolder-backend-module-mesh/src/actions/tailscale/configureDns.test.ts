import { ConfigReader } from '@backstage/config';
import { createMockActionContext } from '@backstage/plugin-scaffolder-node-test-utils';
import { MeshActionDeps } from '../../service/MeshActionDeps';
import {
  createTailscaleConfigureDnsAction,
  dnsConfigManifest,
} from './configureDns';
import { tailnetStanza, upsertTailnetStanza } from './corefile';

const TAILNET = 'tail1234.ts.net';
const KUBEADM = `.:53 {
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
    }
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30
    reload
}
`;

describe('upsertTailnetStanza', () => {
  it('adds one marked server block at the end, leaving the rest as it is', () => {
    const { corefile, outcome } = upsertTailnetStanza(
      KUBEADM,
      TAILNET,
      '10.0.0.53',
    );
    expect(outcome).toBe('added');
    expect(corefile).toBe(
      `${KUBEADM}# tailmesh:begin ${TAILNET}\n${TAILNET}:53 {\n    errors\n    cache 30\n    forward . 10.0.0.53\n}\n# tailmesh:end ${TAILNET}\n`,
    );
  });

  it('is unchanged when the block is already right, and updated in place when the IP moved', () => {
    const once = upsertTailnetStanza(KUBEADM, TAILNET, '10.0.0.53').corefile;
    expect(upsertTailnetStanza(once, TAILNET, '10.0.0.53')).toEqual({
      corefile: once,
      outcome: 'unchanged',
    });
    const moved = upsertTailnetStanza(
      `${once}other.example:53 {\n    forward . 1.1.1.1\n}\n`,
      TAILNET,
      '10.0.0.54',
    );
    expect(moved.outcome).toBe('updated');
    expect(moved.corefile).toBe(
      `${KUBEADM}${tailnetStanza(TAILNET, '10.0.0.54')}\nother.example:53 {\n    forward . 1.1.1.1\n}\n`,
    );
  });

  it('replaces a hand-written block for the tailnet, since CoreDNS refuses a zone twice', () => {
    const manual = `${KUBEADM}${TAILNET}:53 {\n    errors\n    forward . 10.9.9.9 # from the recipe\n}\n`;
    const { corefile, outcome } = upsertTailnetStanza(
      manual,
      TAILNET,
      '10.0.0.53',
    );
    expect(outcome).toBe('updated');
    expect(corefile).toBe(`${KUBEADM}${tailnetStanza(TAILNET, '10.0.0.53')}\n`);
    expect(
      corefile.match(
        new RegExp(`${TAILNET.replace(/\./g, '\\.')}:53 \\{`, 'g'),
      ),
    ).toHaveLength(1);
  });

  it('refuses broken markers or a block sharing the zone with others', () => {
    const once = upsertTailnetStanza(KUBEADM, TAILNET, '10.0.0.53').corefile;
    expect(() =>
      upsertTailnetStanza(once + once, TAILNET, '10.0.0.53'),
    ).toThrow(/duplicated or unbalanced/);
    expect(() =>
      upsertTailnetStanza(
        `${TAILNET} example.org {\n}\n`,
        TAILNET,
        '10.0.0.53',
      ),
    ).toThrow(/together with example.org/);
  });
});

describe('mesh:tailscale:configure-dns', () => {
  it("asks for the stable nameserver image, not the recipe's unstable", () => {
    expect(dnsConfigManifest()).toMatchObject({
      apiVersion: 'tailscale.com/v1alpha1',
      kind: 'DNSConfig',
      metadata: { name: 'ts-dns' },
      spec: {
        nameserver: {
          image: { repo: 'tailscale/k8s-nameserver', tag: 'stable' },
        },
      },
    });
  });

  it('needs the tailnet in mesh.tailscale.dnsName, before touching a cluster', async () => {
    const deps = { config: new ConfigReader({}) } as unknown as MeshActionDeps;
    const action = createTailscaleConfigureDnsAction(deps);
    await expect(
      action.handler(
        createMockActionContext({ input: { cluster: 'east' } }) as never,
      ),
    ).rejects.toThrow(/^No tailnet configured: set mesh.tailscale.dnsName/);
    const configured = createTailscaleConfigureDnsAction({
      config: new ConfigReader({
        mesh: { tailscale: { dnsName: 'tail1234.ts.net' } },
      }),
    } as unknown as MeshActionDeps);
    await expect(
      configured.handler(
        createMockActionContext({
          input: { cluster: 'east', tailnet: 'cluster.local' },
        }) as never,
      ),
    ).rejects.toThrow(
      /Invalid input: tailnet "cluster.local" is not the configured tailnet/,
    );
  });
});
