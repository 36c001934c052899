import { corefileHasTailnetStanza } from '@tailmesh/plugin-mesh-common';
import {
  customServerKey,
  forwardsTailnet,
  manualDnsInstructions,
  withStubDomain,
} from './clusterDns';
import { tailnetStanza } from './corefile';

const tailnet = 'tail1234.ts.net';

describe('cluster DNS kinds', () => {
  it("merges the tailnet into kube-dns's stub domains, keeping the others", () => {
    expect(withStubDomain(undefined, tailnet, '10.0.0.53')).toEqual({
      text: '{"tail1234.ts.net":["10.0.0.53"]}',
      outcome: 'added',
    });
    const corp = '{"corp.internal":["10.1.1.1"]}';
    const added = withStubDomain(corp, tailnet, '10.0.0.53');
    // Added beside the admin's stub domain, not an update of the ConfigMap's key.
    expect(added.outcome).toBe('added');
    expect(JSON.parse(added.text)).toEqual({
      'corp.internal': ['10.1.1.1'],
      [tailnet]: ['10.0.0.53'],
    });
    expect(withStubDomain(added.text, tailnet, '10.0.0.53').outcome).toBe(
      'unchanged',
    );
    expect(withStubDomain(added.text, tailnet, '10.0.0.54').outcome).toBe(
      'updated',
    );
    expect(() => withStubDomain('[1]', tailnet, '10.0.0.53')).toThrow(
      /stubDomains that are not a JSON object/,
    );
  });

  it('names the coredns-custom key as AKS imports it (*.server)', () => {
    expect(customServerKey(tailnet)).toBe('tailmesh-tail1234-ts-net.server');
  });

  it('recognises the block an admin added from the instructions, and only with the right address', () => {
    const corefile = `.:53 {\n    forward . /etc/resolv.conf\n}\n${tailnetStanza(tailnet, '10.0.0.53')}\n`;
    expect(forwardsTailnet(corefile, tailnet, '10.0.0.53')).toBe(true);
    expect(forwardsTailnet(corefile, tailnet, '10.0.0.54')).toBe(false);
    expect(forwardsTailnet('.:53 {\n}\n', tailnet, '10.0.0.53')).toBe(false);
    expect(
      manualDnsInstructions('eks-addon', 'east', tailnet, '10.0.0.53'),
    ).toContain(tailnetStanza(tailnet, '10.0.0.53'));
  });

  it('lets the backend say "cannot tell" for a Corefile that imports AKS custom server blocks', () => {
    expect(corefileHasTailnetStanza('.:53 {\n}\n', tailnet)).toBe(false);
    expect(
      corefileHasTailnetStanza('import custom/*.server\n.:53 {\n}\n', tailnet),
    ).toBeUndefined();
    expect(
      corefileHasTailnetStanza(tailnetStanza(tailnet, '10.0.0.53'), tailnet),
    ).toBe(true);
  });
});
