import dgram from 'node:dgram';
import net from 'node:net';
import { Resolver } from 'node:dns/promises';
import * as dnsPacket from 'dns-packet';
import {
  tailnetStanza,
  upsertTailnetStanza,
} from '@tailmesh/plugin-scaffolder-backend-module-mesh/testUtils';
import {
  internals,
  startCoreDns,
  type CoreDns,
  type KubernetesRecordSource,
  type Packet,
  type ServiceRecord,
} from './coreDns';
import { exchange } from './dnsServer';
import { startK8sNameserver, type K8sNameserver } from './k8sNameserver';
import { kubeDnsCorefile, parseKubeDnsConfig, type KubeDnsConfig } from './kubeDns';

const TAILNET = 'tailmesh-test.ts.net';
const COREDNS_IP = '127.0.0.53';
const NAMESERVER_IP = '127.0.0.54';
const ROGUE_IP = '127.0.0.55';
const BLACKHOLE_IP = '127.0.0.56';
const OTHER_COREDNS_IP = '127.0.0.57';

/** test/testbed/src/controlPlane.ts createCoreDnsConfig: kubeadm's default Corefile. */
const KUBEADM = [
  '.:53 {',
  '    errors',
  '    health {',
  '       lameduck 5s',
  '    }',
  '    ready',
  '    kubernetes cluster.local in-addr.arpa ip6.arpa {',
  '       pods insecure',
  '       fallthrough in-addr.arpa ip6.arpa',
  '       ttl 30',
  '    }',
  '    prometheus :9153',
  '    forward . /etc/resolv.conf {',
  '       max_concurrent 1000',
  '    }',
  '    cache 30',
  '    loop',
  '    reload',
  '    loadbalance',
  '}',
  '',
].join('\n');

/** Port 53 when this process may bind it (root), else one free port for all the servers. */
async function pickPort(host: string): Promise<number> {
  const tryBind = (port: number) =>
    new Promise<number>((resolve, reject) => {
      const s = net.createServer();
      s.once('error', reject);
      s.listen({ host, port }, () => {
        const bound = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(bound));
      });
    });
  return tryBind(53).catch(() => tryBind(0));
}

function rawUdp(host: string, port: number, message: Buffer) {
  return new Promise<Buffer>((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      reject(new Error('no reply'));
    }, 8000);
    s.on('message', m => {
      clearTimeout(timer);
      s.close();
      resolve(m);
    });
    s.connect(port, host, () => s.send(message));
  });
}

const query = (name: string, type: dnsPacket.RecordType, edns?: number) =>
  dnsPacket.encode({
    id: 1234,
    type: 'query',
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type, class: 'IN' }],
    additionals:
      edns === undefined
        ? []
        : [
            {
              name: '.',
              type: 'OPT',
              udpPayloadSize: edns,
              extendedRcode: 0,
              ednsVersion: 0,
              flags: 0,
              flag_do: false,
              options: [],
            },
          ],
  });

const rcode = (p: dnsPacket.DecodedPacket) =>
  (p as unknown as { rcode: string }).rcode;

/** Retries an assertion: a (re)start opens the sockets asynchronously. */
async function eventually(
  check: () => Promise<unknown>,
  timeoutMs = 3000,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise(r => setTimeout(r, 50));
    }
  }
}

const svc = (
  namespace: string,
  name: string,
  spec: Partial<ServiceRecord>,
): ServiceRecord => ({
  namespace,
  name,
  clusterIPs: [],
  headless: false,
  endpoints: [],
  type: 'ClusterIP',
  ports: [],
  ...spec,
});

const services = new Map<string, ServiceRecord>();
const source: KubernetesRecordSource = {
  service: (namespace, name) => services.get(`${namespace}/${name}`),
  namespaceExists: namespace =>
    ['default', 'kube-system', 'mesh'].includes(namespace),
};
for (const s of [
  svc('default', 'kubernetes', { clusterIPs: ['10.96.0.1'] }),
  svc('mesh', 'web', { clusterIPs: ['10.96.10.10'] }),
  svc('mesh', 'db', {
    headless: true,
    endpoints: [
      { ip: '10.101.0.5', hostname: 'db-0', ready: true },
      { ip: '10.101.0.6', ready: true },
      { ip: '10.101.0.7', hostname: 'db-2', ready: false },
    ],
  }),
  svc('mesh', 'empty', { headless: true }),
  svc('mesh', 'big', {
    headless: true,
    endpoints: Array.from({ length: 40 }, (_, i) => ({
      ip: `10.101.1.${i + 1}`,
      ready: true,
    })),
  }),
  // What the Tailscale operator's egress proxies look like to cluster DNS.
  svc('mesh', 'egress', {
    type: 'ExternalName',
    externalName: `web.${TAILNET}`,
  }),
]) {
  services.set(`${s.namespace}/${s.name}`, s);
}

const RECORDS = JSON.stringify({
  version: 'v1alpha1',
  ip4: { [`web.${TAILNET}`]: ['100.100.1.1'] },
});

describe("CoreDNS stand-in with kubeadm's Corefile and the Tailscale nameserver", () => {
  let port: number;
  let coreDns: CoreDns;
  let nameserver: K8sNameserver;
  let rogue: dgram.Socket;
  let blackhole: dgram.Socket;
  const logs: string[] = [];
  /** `forward` targets: an IP alone means port 53. */
  const target = (ip: string) => (port === 53 ? ip : `${ip}:${port}`);
  /** A fresh resolver per lookup: c-ares caches answers for their TTL. */
  const resolver = () => {
    const r = new Resolver({ timeout: 4000, tries: 1 });
    r.setServers([coreDns.address]);
    return r;
  };
  const ask = async (name: string, type: dnsPacket.RecordType, edns?: number) =>
    dnsPacket.decode(await rawUdp(COREDNS_IP, port, query(name, type, edns)));
  const withStanza = (ip = NAMESERVER_IP) =>
    upsertTailnetStanza(KUBEADM, TAILNET, target(ip)).corefile;

  beforeAll(async () => {
    port = await pickPort(COREDNS_IP);
    nameserver = await startK8sNameserver({ host: NAMESERVER_IP, port });
    nameserver.setRecords(RECORDS);
    coreDns = await startCoreDns({
      host: COREDNS_IP,
      port,
      kubernetes: source,
      log: m => logs.push(m),
    });
    // Something an injected server block could point at: answers every A query with 6.6.6.6.
    rogue = dgram.createSocket('udp4');
    rogue.on('message', (msg, rinfo) => {
      const req = dnsPacket.decode(msg);
      const answers = (req.questions ?? []).map(q => ({
        name: q.name,
        type: 'A' as const,
        ttl: 60,
        data: '6.6.6.6',
      }));
      const out = {
        id: req.id,
        type: 'response' as const,
        questions: req.questions,
        answers,
      };
      rogue.send(dnsPacket.encode(out), rinfo.port, rinfo.address);
    });
    await new Promise<void>(r => rogue.bind(port, ROGUE_IP, () => r()));
    // An upstream that never answers.
    blackhole = dgram.createSocket('udp4');
    await new Promise<void>(r => blackhole.bind(port, BLACKHOLE_IP, () => r()));
  });

  afterAll(async () => {
    await coreDns.close();
    await nameserver.close();
    rogue.close();
    blackhole.close();
  });

  beforeEach(() => {
    logs.length = 0;
  });

  it('is down until its first Corefile loads (the Service has no ready endpoint)', async () => {
    await expect(
      resolver().resolve4('kubernetes.default.svc.cluster.local'),
    ).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    coreDns.setCorefile(KUBEADM);
    await eventually(() =>
      expect(
        resolver().resolve4('kubernetes.default.svc.cluster.local'),
      ).resolves.toEqual(['10.96.0.1']),
    );
  });

  it('answers a Service with its ClusterIP, authoritative, with the ttl option', async () => {
    await expect(
      resolver().resolve4('web.mesh.svc.cluster.local'),
    ).resolves.toEqual(['10.96.10.10']);
    const a = await ask('web.mesh.svc.cluster.local', 'A');
    expect(a.flag_aa).toBe(true);
    expect(a.answers).toEqual([
      expect.objectContaining({ type: 'A', ttl: 30, data: '10.96.10.10' }),
    ]);
  });

  it('NODATA for a known name without records of the type, NXDOMAIN for unknown names, both with the SOA', async () => {
    await expect(
      resolver().resolve6('web.mesh.svc.cluster.local'),
    ).rejects.toMatchObject({ code: 'ENODATA' });
    const aaaa = await ask('web.mesh.svc.cluster.local', 'AAAA');
    expect(rcode(aaaa)).toBe('NOERROR');
    expect(aaaa.answers).toEqual([]);
    expect(aaaa.authorities).toEqual([
      expect.objectContaining({
        name: 'cluster.local',
        type: 'SOA',
        ttl: 30,
        data: expect.objectContaining({
          mname: 'ns.dns.cluster.local',
          rname: 'hostmaster.cluster.local',
          minimum: 30,
        }),
      }),
    ]);
    for (const name of [
      'nope.mesh.svc.cluster.local',
      'web.nope.svc.cluster.local',
      'web.mesh.cluster.local',
      'empty.mesh.svc.cluster.local', // headless, no ready endpoint
      '10-1-2-3.mesh.pod.cluster.local', // pod names are not modelled
    ]) {
      await expect(resolver().resolve4(name)).rejects.toMatchObject({
        code: 'ENOTFOUND',
      });
    }
    const nx = await ask('nope.mesh.svc.cluster.local', 'A');
    expect(rcode(nx)).toBe('NXDOMAIN');
    expect(nx.flag_aa).toBe(true);
    expect(nx.authorities).toEqual([expect.objectContaining({ type: 'SOA' })]);
    // The namespace exists; so does a Service for a type it has no records of.
    expect(rcode(await ask('mesh.svc.cluster.local', 'A'))).toBe('NOERROR');
    expect(rcode(await ask('web.mesh.svc.cluster.local', 'TXT'))).toBe(
      'NOERROR',
    );
    expect(rcode(await ask('nope.mesh.svc.cluster.local', 'TXT'))).toBe(
      'NXDOMAIN',
    );
  });

  it('answers a headless Service with its ready endpoints, and endpoints by hostname or dashed IP', async () => {
    const ips = await resolver().resolve4('db.mesh.svc.cluster.local');
    expect(ips.sort()).toEqual(['10.101.0.5', '10.101.0.6']);
    await expect(
      resolver().resolve4('db-0.db.mesh.svc.cluster.local'),
    ).resolves.toEqual(['10.101.0.5']);
    await expect(
      resolver().resolve4('10-101-0-6.db.mesh.svc.cluster.local'),
    ).resolves.toEqual(['10.101.0.6']);
    await expect(
      resolver().resolve4('db-2.db.mesh.svc.cluster.local'),
    ).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });

  it('sends other names to `forward . /etc/resolv.conf`, where tailnet names do not exist', async () => {
    await expect(resolver().resolve4(`web.${TAILNET}`)).rejects.toMatchObject({
      code: 'ENOTFOUND',
    });
    // Reverse names fall through (in-addr.arpa) to the same place.
    await expect(resolver().reverse('10.96.10.10')).rejects.toMatchObject({
      code: 'ENOTFOUND',
    });
    // The egress Service's CNAME is followed through this server: outside, NXDOMAIN, so only
    // the CNAME comes back.
    const p = await ask('egress.mesh.svc.cluster.local', 'A');
    expect(rcode(p)).toBe('NOERROR');
    expect(p.answers).toEqual([
      expect.objectContaining({
        type: 'CNAME',
        ttl: 30,
        data: `web.${TAILNET}`,
      }),
    ]);
  });

  it('with the tailnet stanza of mesh:tailscale:configure-dns, resolves tailnet names through the nameserver', async () => {
    coreDns.setCorefile(withStanza());
    expect(logs).toContain('[INFO] Reloading complete');
    await expect(resolver().resolve4(`web.${TAILNET}`)).resolves.toEqual([
      '100.100.1.1',
    ]);
    // The nameserver's reply relayed (authoritative, TTL 0), with the client's OPT added.
    const p = await ask(`web.${TAILNET}`, 'A', 1232);
    expect(p.flag_aa).toBe(true);
    expect(p.answers).toEqual([
      expect.objectContaining({ ttl: 0, data: '100.100.1.1' }),
    ]);
    expect(p.additionals).toEqual([
      expect.objectContaining({ type: 'OPT', udpPayloadSize: 1232 }),
    ]);
    // Over TCP too (forwarded over TCP, as the client asked).
    const tcp = await exchange(
      COREDNS_IP,
      port,
      { id: 9, questions: [{ name: `web.${TAILNET}`, type: 'A' }] },
      'tcp',
      3000,
    );
    expect(tcp.answers).toEqual([
      expect.objectContaining({ data: '100.100.1.1' }),
    ]);
    // NODATA and NXDOMAIN come from the nameserver too.
    await expect(resolver().resolve6(`web.${TAILNET}`)).rejects.toMatchObject({
      code: 'ENODATA',
    });
    await expect(resolver().resolve4(`nope.${TAILNET}`)).rejects.toMatchObject({
      code: 'ENOTFOUND',
    });
    // The egress ExternalName now resolves end to end.
    const chain = await ask('egress.mesh.svc.cluster.local', 'A');
    expect(chain.answers).toEqual([
      expect.objectContaining({
        type: 'CNAME',
        ttl: 30,
        data: `web.${TAILNET}`,
      }),
      expect.objectContaining({ type: 'A', ttl: 0, data: '100.100.1.1' }),
    ]);
    await expect(
      resolver().resolve4('egress.mesh.svc.cluster.local'),
    ).resolves.toEqual(['100.100.1.1']);
    await expect(
      resolver().resolve4('web.mesh.svc.cluster.local'),
    ).resolves.toEqual(['10.96.10.10']);
  });

  it("on AKS, resolves the tailnet through the server block in coredns-custom that the Corefile imports, and reloads when that file changes", async () => {
    // AKS's Corefile ends with `import custom/*.server`; the coredns-custom ConfigMap is mounted
    // at /etc/coredns/custom (https://learn.microsoft.com/azure/aks/coredns-custom).
    const aks = `${KUBEADM.trimEnd()}\nimport custom/*.server\n`;
    const block = `${tailnetStanza(TAILNET, target(NAMESERVER_IP))}\n`;
    const custom = (extra: Record<string, string> = {}) =>
      new Map(
        Object.entries({
          'tailmesh.server': block,
          ...extra,
        }).map(([k, v]) => [`/etc/coredns/custom/${k}`, v]),
      );
    coreDns.setFiles(new Map());
    coreDns.setCorefile(aks);
    expect(logs).toContain(
      '[WARNING] No files matching import glob pattern: custom/*.server',
    );
    await expect(resolver().resolve4(`web.${TAILNET}`)).rejects.toMatchObject({
      code: 'ENOTFOUND',
    });

    logs.length = 0;
    coreDns.setFiles(custom());
    expect(logs).toEqual(['[INFO] Reloading complete']);
    await expect(resolver().resolve4(`web.${TAILNET}`)).resolves.toEqual([
      '100.100.1.1',
    ]);

    // A key the glob does not match changes nothing that was parsed: no reload.
    logs.length = 0;
    coreDns.setFiles(custom({ 'notes.txt': 'anything' }));
    expect(logs).toEqual([]);

    // An imported file that does not load: the running configuration stays, the error names it.
    coreDns.setFiles(custom({ 'z.server': 'other.example:53 {\n    bogus\n}\n' }));
    expect(logs).toEqual([
      expect.stringContaining(
        "/etc/coredns/custom/z.server:2 - Error during parsing: Unknown directive 'bogus'",
      ),
    ]);
    await expect(resolver().resolve4(`web.${TAILNET}`)).resolves.toEqual([
      '100.100.1.1',
    ]);

    // Without the Corefile's import, the same files are not read.
    coreDns.setFiles(custom());
    coreDns.setCorefile(KUBEADM);
    await expect(resolver().resolve4(`web.${TAILNET}`)).rejects.toMatchObject({
      code: 'ENOTFOUND',
    });
    coreDns.setFiles(new Map());
  });

  it('on GKE, kube-dns forwards the tailnet to the nameserver of its stub domain', async () => {
    const kubeDns = (data?: Record<string, string>) =>
      kubeDnsCorefile(parseKubeDnsConfig(data) as KubeDnsConfig).corefile;
    // kube-dns without a ConfigMap: the cluster's names, and the outside world for the rest.
    coreDns.setCorefile(kubeDns());
    await expect(resolver().resolve4('web.mesh.svc.cluster.local')).resolves.toEqual(['10.96.10.10']);
    await expect(resolver().resolve4(`web.${TAILNET}`)).rejects.toMatchObject({ code: 'ENOTFOUND' });
    // The stub domain mesh:tailscale:configure-dns writes, beside one of the admin's.
    coreDns.setCorefile(
      kubeDns({
        stubDomains: JSON.stringify({ 'corp.internal': [target(ROGUE_IP)], [TAILNET]: [target(NAMESERVER_IP)] }),
      }),
    );
    await expect(resolver().resolve4(`web.${TAILNET}`)).resolves.toEqual(['100.100.1.1']);
    await expect(resolver().resolve4(`nope.${TAILNET}`)).rejects.toMatchObject({ code: 'ENOTFOUND' });
    await expect(resolver().resolve4('db.corp.internal')).resolves.toEqual(['6.6.6.6']);
    await expect(resolver().resolve4('web.mesh.svc.cluster.local')).resolves.toEqual(['10.96.10.10']);
    // Upstream nameservers replace the node's resolv.conf for everything else.
    coreDns.setCorefile(kubeDns({ upstreamNameservers: JSON.stringify([target(ROGUE_IP)]) }));
    await expect(resolver().resolve4('example.com')).resolves.toEqual(['6.6.6.6']);
    coreDns.setCorefile(KUBEADM);
  });

  it('keeps the running Corefile when a new one does not load, and says why', async () => {
    coreDns.setCorefile(withStanza());
    const broken = [
      [
        `${withStanza()}other.example:53 {\n    bogus\n}\n`,
        /Unknown directive 'bogus'/,
      ],
      [`${withStanza()}other.example:53 {\n    errors\n`, /Unexpected EOF/],
      [`${withStanza()}other.example:53 {\n    errors }\n`, /Unexpected '}'/],
      [
        `${withStanza()}other.example:53 {\n    hosts /etc/hosts\n}\n`,
        /plugin\/hosts: .*does not model/,
      ],
      [
        withStanza('tailscale-nameserver'),
        /plugin\/forward: not an IP address or file: "tailscale-nameserver"/,
      ],
      [
        `${withStanza()}${TAILNET}:53 {\n    forward . 127.0.0.1\n}\n`,
        /cannot serve dns:\/\/tailmesh-test\.ts\.net\.:53 - it is already defined/,
      ],
    ] as const;
    for (const [corefile, why] of broken) {
      logs.length = 0;
      coreDns.setCorefile(corefile);
      expect(logs).toEqual([
        expect.stringMatching(/Corefile changed but reload failed/),
      ]);
      expect(logs[0]).toMatch(why);
    }
    await expect(resolver().resolve4(`web.${TAILNET}`)).resolves.toEqual([
      '100.100.1.1',
    ]);
    // Without the stanza again, tailnet names are NXDOMAIN again.
    coreDns.setCorefile(KUBEADM);
    await expect(resolver().resolve4(`web.${TAILNET}`)).rejects.toMatchObject({
      code: 'ENOTFOUND',
    });
  });

  it('honours a server block that an injected value adds: the most specific zone wins', async () => {
    // A "nameserver IP" carrying a Corefile fragment: it closes the stanza and opens a block
    // that is more specific than `.` for cluster.local.
    const injected = `${target(NAMESERVER_IP)}\n}\ncluster.local:53 {\n    forward . ${target(ROGUE_IP)}`;
    coreDns.setCorefile(
      upsertTailnetStanza(KUBEADM, TAILNET, injected).corefile,
    );
    expect(logs).toContain('[INFO] Reloading complete');
    await expect(
      resolver().resolve4('web.mesh.svc.cluster.local'),
    ).resolves.toEqual(['6.6.6.6']);
    await expect(resolver().resolve4(`web.${TAILNET}`)).resolves.toEqual([
      '100.100.1.1',
    ]);
  });

  it('REFUSED for names no server block covers; blocks for other ports are not served', async () => {
    coreDns.setCorefile(
      `${TAILNET.toUpperCase()}:53 {\n    forward . ${target(NAMESERVER_IP)}\n}\n` +
        `.:5353 {\n    kubernetes cluster.local\n}\n`,
    );
    expect(logs).toContain(
      'server block dns://.:5353 is for another listener: not served by this stand-in',
    );
    await expect(
      resolver().resolve4('web.mesh.svc.cluster.local'),
    ).rejects.toMatchObject({ code: 'EREFUSED' });
    await expect(resolver().resolve4(`web.${TAILNET}`)).resolves.toEqual([
      '100.100.1.1',
    ]);
    coreDns.setCorefile(KUBEADM);
    // A class other than IN.
    const chaos = dnsPacket.encode({
      id: 7,
      type: 'query',
      questions: [
        { name: 'web.mesh.svc.cluster.local', type: 'A', class: 'CH' },
      ],
    });
    expect(rcode(dnsPacket.decode(await rawUdp(COREDNS_IP, port, chaos)))).toBe(
      'REFUSED',
    );
  });

  it('truncates UDP answers over 512 bytes unless EDNS allows more; the client retries over TCP', async () => {
    const plain = await ask('big.mesh.svc.cluster.local', 'A');
    expect(plain.flag_tc).toBe(true);
    expect(plain.answers?.length).toBeGreaterThan(0);
    expect(plain.answers?.length).toBeLessThan(40);
    const edns = await ask('big.mesh.svc.cluster.local', 'A', 4096);
    expect(edns.flag_tc).toBe(false);
    expect(edns.answers).toHaveLength(40);
    await expect(
      resolver().resolve4('big.mesh.svc.cluster.local'),
    ).resolves.toHaveLength(40);
  });

  it('answers SERVFAIL when the forward target does not answer for 5 s', async () => {
    coreDns.setCorefile(withStanza(BLACKHOLE_IP));
    const started = Date.now();
    const p = await ask(`web.${TAILNET}`, 'A');
    expect(rcode(p)).toBe('SERVFAIL');
    expect(Date.now() - started).toBeGreaterThanOrEqual(5000);
    expect(logs.join('\n')).toMatch(
      /\[ERROR\] plugin\/errors: 2 web\.tailmesh-test\.ts\.net\. A: read udp .*i\/o timeout/,
    );
  }, 20_000);

  it('answers SERVFAIL while the nameserver crash-loops on records it cannot load', async () => {
    coreDns.setCorefile(withStanza());
    nameserver.setRecords('{"version": "v2"}');
    expect(rcode(await ask(`web.${TAILNET}`, 'A'))).toBe('SERVFAIL');
    expect(logs.join('\n')).toMatch(/plugin\/errors: 2 .*ECONNREFUSED/);
    nameserver.setRecords(RECORDS);
    await eventually(() =>
      expect(resolver().resolve4(`web.${TAILNET}`)).resolves.toEqual([
        '100.100.1.1',
      ]),
    );
  }, 20_000);
});

describe('CoreDNS stand-in: start and upstream', () => {
  let coreDns: CoreDns;
  const logs: string[] = [];
  const upstreamQueries: string[] = [];

  beforeAll(async () => {
    coreDns = await startCoreDns({
      host: OTHER_COREDNS_IP,
      port: await pickPort(OTHER_COREDNS_IP),
      kubernetes: source,
      log: m => logs.push(m),
      // The outside world: knows example.com only.
      upstream: async (q: Packet): Promise<Packet> => {
        const name = q.questions?.[0]?.name ?? '';
        upstreamQueries.push(name);
        const known = name === 'example.com';
        return {
          id: q.id,
          type: 'response',
          flags: dnsPacket.RECURSION_AVAILABLE | (known ? 0 : 3),
          questions: q.questions,
          answers: known
            ? [{ name, type: 'A', ttl: 300, data: '93.184.216.34' }]
            : [],
        };
      },
    });
  });

  afterAll(() => coreDns.close());

  it('does not start on a Corefile that does not load, and starts on the next one that does', async () => {
    const resolver = new Resolver({ timeout: 3000, tries: 1 });
    resolver.setServers([coreDns.address]);
    coreDns.setCorefile('.:53 {\n    forward . /etc/resolv.conf\n');
    expect(logs.join('\n')).toMatch(/cannot start .*Unexpected EOF/);
    await expect(resolver.resolve4('example.com')).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
    // Quoted tokens and comments; kubernetes before forward whatever the order, passing on
    // what does not exist in its zones only where `fallthrough` says so.
    coreDns.setCorefile(
      [
        '# the outside world',
        '.:53 {',
        '    forward . "/etc/resolv.conf" # the node\'s',
        '    kubernetes cluster.local com org {',
        '        fallthrough com',
        '    }',
        '}',
      ].join('\n'),
    );
    await eventually(() =>
      expect(resolver.resolve4('example.com')).resolves.toEqual([
        '93.184.216.34',
      ]),
    );
    await expect(
      resolver.resolve4('web.mesh.svc.cluster.local'),
    ).resolves.toEqual(['10.96.10.10']);
    await expect(resolver.resolve4('example.org')).rejects.toMatchObject({
      code: 'ENOTFOUND',
    });
    expect(upstreamQueries).toEqual(['example.com']);
  });
});

describe('kube-dns configuration (kubernetes/dns pkg/dns/config)', () => {
  it('reads stub domains and upstream nameservers; no ConfigMap is the default', () => {
    expect(parseKubeDnsConfig(undefined)).toEqual({ stubDomains: {}, upstreamNameservers: [] });
    expect(
      parseKubeDnsConfig({
        stubDomains: '{"tailnet.ts.net": ["10.0.0.53"], "corp.internal": ["10.1.0.1:5353", "[fd00::1]:53"]}',
        upstreamNameservers: '["8.8.8.8", "1.1.1.1:53"]',
        federations: 'anything',
      }),
    ).toEqual({
      stubDomains: { 'tailnet.ts.net': ['10.0.0.53'], 'corp.internal': ['10.1.0.1:5353', '[fd00::1]:53'] },
      upstreamNameservers: ['8.8.8.8', '1.1.1.1:53'],
    });
  });

  it('ignores an update that is not its JSON or does not validate, and says why', () => {
    const error = (data: Record<string, string>) => (parseKubeDnsConfig(data) as { error: string }).error;
    expect(error({ stubDomains: '{"a.example": ' })).toMatch(/^Invalid configuration for stubDomains, ignoring update/);
    expect(error({ stubDomains: '["10.0.0.53"]' })).toMatch(/not a JSON object/);
    expect(error({ stubDomains: '{"a.example": "10.0.0.53"}' })).toMatch(/a.example is not a list of strings/);
    expect(error({ stubDomains: '{"Not_A_Domain": ["10.0.0.53"]}' })).toMatch(/invalid domain name: "Not_A_Domain"/);
    expect(error({ stubDomains: '{"a.example": ["10.0.0.53:99999"]}' })).toMatch(/invalid nameserver: "10.0.0.53:99999"/);
    expect(error({ stubDomains: '{"a.example": ["ns.example:53"]}' })).toMatch(/invalid nameserver: "ns.example:53"/);
    expect(error({ upstreamNameservers: '["1.1.1.1","1.0.0.1","8.8.8.8","8.8.4.4"]' })).toMatch(/more than three/);
    expect(error({ upstreamNameservers: '["dns.google"]' })).toMatch(/bad nameserver "dns.google"/);
  });

  it('becomes a Corefile as kubeadm translated kube-dns: a block per stub domain, names left out', () => {
    const { corefile, skipped } = kubeDnsCorefile(
      parseKubeDnsConfig({
        stubDomains: '{"z.example": ["10.0.0.1", "10.0.0.2:5353"], "a.example": ["ns.a.example"]}',
        upstreamNameservers: '["8.8.8.8"]',
      }) as KubeDnsConfig,
    );
    const blocks = internals.parseCorefile(corefile).map(b => b.keys);
    expect(blocks).toEqual([['.:53'], ['z.example:53']]);
    expect(corefile).toContain('forward . 8.8.8.8:53\n');
    expect(corefile).toContain('forward . 10.0.0.1:53 10.0.0.2:5353\n');
    expect(skipped).toEqual(['a.example: nameserver ns.a.example is not an IP address (with a port), which dnsmasq needs']);
  });
});

describe('Corefile parsing (coredns/caddy caddyfile)', () => {
  it("reads kubeadm's Corefile into one block, directives with their nested blocks", () => {
    const [block, ...rest] = internals.parseCorefile(KUBEADM);
    expect(rest).toEqual([]);
    expect(block.keys).toEqual(['.:53']);
    expect(block.directives.map(d => d.name)).toEqual([
      'errors',
      'health',
      'ready',
      'kubernetes',
      'prometheus',
      'forward',
      'cache',
      'loop',
      'reload',
      'loadbalance',
    ]);
    const kubernetes = block.directives[3];
    expect(kubernetes.args).toEqual([
      'cluster.local',
      'in-addr.arpa',
      'ip6.arpa',
    ]);
    expect(kubernetes.block.map(o => [o.name, ...o.args])).toEqual([
      ['pods', 'insecure'],
      ['fallthrough', 'in-addr.arpa', 'ip6.arpa'],
      ['ttl', '30'],
    ]);
  });

  it('splices imported files in where an `import` begins a line, in name order, relative to the importing file', () => {
    const files = new Map([
      ['/etc/coredns/custom/b.server', 'b.example:53 {\n    import inc/log.conf\n}\n'],
      ['/etc/coredns/custom/a.server', 'a.example:53 {\n    errors\n}\n'],
      ['/etc/coredns/custom/inc/log.conf', 'log\n'],
      ['/etc/coredns/custom/x.override', 'cache 30\n'],
    ]);
    const blocks = internals.parseCorefile(
      '.:53 {\n    import custom/*.override\n    errors\n}\nimport custom/*.server\n',
      files,
    );
    expect(blocks.map(b => [b.keys, b.directives.map(d => d.name)])).toEqual([
      [['.:53'], ['cache', 'errors']],
      [['a.example:53'], ['errors']],
      [['b.example:53'], ['log']],
    ]);
    expect(blocks[2].directives[0]).toMatchObject({
      file: '/etc/coredns/custom/inc/log.conf',
      line: 1,
    });
  });

  it('refuses an import without its one argument, a missing plain file, a second wildcard, a directory', () => {
    const files = new Map([['/etc/coredns/custom/a.server', 'a.example {\n}\n']]);
    const parse = (corefile: string) => () =>
      internals.parseCorefile(corefile, files);
    expect(parse('import\n')).toThrow(
      "/etc/coredns/Corefile:1 - Error during parsing: Wrong argument count or unexpected line ending after 'import'",
    );
    expect(parse('import a b\n')).toThrow(
      'Import takes only one argument (glob pattern or file)',
    );
    expect(parse('import custom/none.server\n')).toThrow(
      'File to import not found: custom/none.server',
    );
    expect(parse('import */*.server\n')).toThrow(
      'Glob pattern may only contain one wildcard (*), but has others: /etc/coredns/*/*.server',
    );
    expect(parse('import cust*\n')).toThrow(
      'Could not import /etc/coredns/custom: is a directory',
    );
    // A file that imports itself stops at the import limit.
    const loop = new Map([['/etc/coredns/self', 'import self\n']]);
    expect(() => internals.parseCorefile('import self\n', loop)).toThrow(
      'maximum file import depth (1000) exceeded',
    );
  });

  it('takes several keys, quoted tokens with spaces, one-line nested blocks', () => {
    const [block] = internals.parseCorefile(
      'a.example, b.example:53\n{\n  log "a b" { class all }\n}\n',
    );
    expect(block.keys).toEqual(['a.example', 'b.example:53']);
    expect(block.directives).toEqual([
      expect.objectContaining({
        name: 'log',
        args: ['a b'],
        block: [expect.objectContaining({ name: 'class', args: ['all'] })],
      }),
    ]);
  });
});
