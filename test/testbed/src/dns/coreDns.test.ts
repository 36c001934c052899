import dgram from 'node:dgram';
import net from 'node:net';
import { Resolver } from 'node:dns/promises';
import * as dnsPacket from 'dns-packet';
import { upsertTailnetStanza } from '../../../../plugins/scaffolder-actions/src/actions/tailscale/corefile';
import {
  internals,
  startCoreDns,
  type CoreDns,
  type KubernetesRecordSource,
  type Packet,
  type ServiceRecord,
} from './coreDns';
import { startK8sNameserver, type K8sNameserver } from './k8sNameserver';

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

function rawUdp(host: string, port: number, message: Buffer, timeoutMs = 8000) {
  return new Promise<Buffer | undefined>((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      resolve(undefined);
    }, timeoutMs);
    s.on('error', err => {
      clearTimeout(timer);
      s.close();
      reject(err);
    });
    s.on('message', m => {
      clearTimeout(timer);
      s.close();
      resolve(m);
    });
    s.connect(port, host, () => s.send(message));
  });
}

const query = (
  name: string,
  type: dnsPacket.RecordType,
  opts: { edns?: number } = {},
): Buffer =>
  dnsPacket.encode({
    id: 1234,
    type: 'query',
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type, class: 'IN' }],
    additionals:
      opts.edns === undefined
        ? []
        : [
            {
              name: '.',
              type: 'OPT',
              udpPayloadSize: opts.edns,
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
const namespaces = new Set(['default', 'kube-system', 'mesh']);
const source: KubernetesRecordSource = {
  service: (namespace, name) => services.get(`${namespace}/${name}`),
  namespaceExists: namespace => namespaces.has(namespace),
};
for (const s of [
  svc('default', 'kubernetes', {
    clusterIPs: ['10.96.0.1'],
    ports: [{ name: 'https', port: 443, protocol: 'TCP' }],
  }),
  svc('kube-system', 'kube-dns', {
    clusterIPs: ['10.96.0.10'],
    ports: [
      { name: 'dns', port: 53, protocol: 'UDP' },
      { name: 'dns-tcp', port: 53, protocol: 'TCP' },
    ],
  }),
  svc('mesh', 'web', {
    clusterIPs: ['10.96.10.10'],
    ports: [{ name: 'http', port: 80, protocol: 'TCP' }],
  }),
  svc('mesh', 'db', {
    headless: true,
    ports: [{ name: 'pg', port: 5432, protocol: 'TCP' }],
    endpoints: [
      { ip: '10.101.0.5', hostname: 'db-0', ready: true },
      { ip: '10.101.0.6', ready: true },
      { ip: '10.101.0.7', hostname: 'db-2', ready: false },
    ],
  }),
  svc('mesh', 'big', {
    headless: true,
    ports: [{ name: 'http', port: 80, protocol: 'TCP' }],
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
  const ask = async (
    name: string,
    type: dnsPacket.RecordType,
    opts: { edns?: number } = {},
  ) => {
    const reply = await rawUdp(COREDNS_IP, port, query(name, type, opts));
    if (!reply) throw new Error('no reply');
    return dnsPacket.decode(reply);
  };
  const withStanza = () =>
    upsertTailnetStanza(KUBEADM, TAILNET, target(NAMESERVER_IP)).corefile;

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
      rogue.send(
        dnsPacket.encode({
          id: req.id,
          type: 'response',
          flags: dnsPacket.RECURSION_AVAILABLE,
          questions: req.questions,
          answers: (req.questions ?? []).map(q => ({
            name: q.name,
            type: 'A',
            ttl: 60,
            data: '6.6.6.6',
          })),
        }),
        rinfo.port,
        rinfo.address,
      );
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
    ).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
    coreDns.setCorefile(KUBEADM);
    await eventually(() =>
      expect(
        resolver().resolve4('kubernetes.default.svc.cluster.local'),
      ).resolves.toEqual(['10.96.0.1']),
    );
  });

  it('answers Services as plugin/kubernetes does', async () => {
    await expect(
      resolver().resolve4('web.mesh.svc.cluster.local'),
    ).resolves.toEqual(['10.96.10.10']);
    const a = await ask('web.mesh.svc.cluster.local', 'A');
    expect(a.flag_aa).toBe(true);
    expect(a.answers).toEqual([
      expect.objectContaining({ type: 'A', ttl: 30, data: '10.96.10.10' }),
    ]);

    // NODATA: the name exists (A), nothing for AAAA; the zone's SOA in the authority section.
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

    // NXDOMAIN: unknown Service, unknown namespace, and names that are not in the schema.
    for (const name of [
      'nope.mesh.svc.cluster.local',
      'web.nope.svc.cluster.local',
      'web.mesh.cluster.local',
    ]) {
      await expect(resolver().resolve4(name)).rejects.toMatchObject({
        code: 'ENOTFOUND',
      });
    }
    const nx = await ask('nope.mesh.svc.cluster.local', 'A');
    expect(rcode(nx)).toBe('NXDOMAIN');
    expect(nx.flag_aa).toBe(true);
    expect(nx.authorities?.[0]).toMatchObject({ type: 'SOA' });
    // The namespace itself exists: NODATA.
    expect(rcode(await ask('mesh.svc.cluster.local', 'A'))).toBe('NOERROR');

    await expect(
      resolver().resolveSrv('_http._tcp.web.mesh.svc.cluster.local'),
    ).resolves.toEqual([
      {
        name: 'web.mesh.svc.cluster.local',
        port: 80,
        priority: 0,
        weight: 100,
      },
    ]);
    await expect(
      resolver().resolveTxt('dns-version.cluster.local'),
    ).resolves.toEqual([['1.1.0']]);
  });

  it('answers headless Services with their ready endpoints, and endpoints by hostname', async () => {
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
    const srv = await resolver().resolveSrv('db.mesh.svc.cluster.local');
    expect(srv.sort((x, y) => x.name.localeCompare(y.name))).toEqual([
      {
        name: '10-101-0-6.db.mesh.svc.cluster.local',
        port: 5432,
        priority: 0,
        weight: 50,
      },
      {
        name: 'db-0.db.mesh.svc.cluster.local',
        port: 5432,
        priority: 0,
        weight: 50,
      },
    ]);
  });

  it('answers pod names with `pods insecure`', async () => {
    await expect(
      resolver().resolve4('10-1-2-3.mesh.pod.cluster.local'),
    ).resolves.toEqual(['10.1.2.3']);
    await expect(
      resolver().resolve4('10-1-2-3.nope.pod.cluster.local'),
    ).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });

  it('sends other names to `forward . /etc/resolv.conf`, where tailnet names do not exist', async () => {
    await expect(resolver().resolve4(`web.${TAILNET}`)).rejects.toMatchObject({
      code: 'ENOTFOUND',
    });
    // Reverse lookups fall through (in-addr.arpa) to the same place.
    await expect(resolver().reverse('10.96.10.10')).rejects.toMatchObject({
      code: 'ENOTFOUND',
    });
    // The egress Service's CNAME is followed through this server: to the outside, NXDOMAIN,
    // so only the CNAME comes back.
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
    const p = await ask(`web.${TAILNET}`, 'A', { edns: 1232 });
    // The nameserver's own reply, relayed: authoritative, TTL 0; CoreDNS adds the client's OPT.
    expect(p.flag_aa).toBe(true);
    expect(p.answers).toEqual([
      expect.objectContaining({ ttl: 0, data: '100.100.1.1' }),
    ]);
    expect(p.additionals).toEqual([
      expect.objectContaining({ type: 'OPT', udpPayloadSize: 1232 }),
    ]);

    // The egress ExternalName now resolves end to end.
    await expect(
      resolver().resolve4('egress.mesh.svc.cluster.local'),
    ).resolves.toEqual(['100.100.1.1']);
    await expect(
      resolver().resolveCname('egress.mesh.svc.cluster.local'),
    ).resolves.toEqual([`web.${TAILNET}`]);
    const chain = await ask('egress.mesh.svc.cluster.local', 'A');
    expect(chain.answers).toEqual([
      expect.objectContaining({
        type: 'CNAME',
        ttl: 30,
        data: `web.${TAILNET}`,
      }),
      expect.objectContaining({ type: 'A', ttl: 0, data: '100.100.1.1' }),
    ]);
    // Cluster names are unaffected.
    await expect(
      resolver().resolve4('web.mesh.svc.cluster.local'),
    ).resolves.toEqual(['10.96.10.10']);
  });

  it('NXDOMAIN for tailnet names the nameserver has no records for, NODATA for AAAA of IPv4-only names', async () => {
    await expect(resolver().resolve4(`nope.${TAILNET}`)).rejects.toMatchObject({
      code: 'ENOTFOUND',
    });
    await expect(resolver().resolve6(`web.${TAILNET}`)).rejects.toMatchObject({
      code: 'ENODATA',
    });
    nameserver.setRecords(undefined);
    await expect(resolver().resolve4(`web.${TAILNET}`)).rejects.toMatchObject({
      code: 'ENOTFOUND',
    });
    const p = await ask(`web.${TAILNET}`, 'A');
    expect(rcode(p)).toBe('NXDOMAIN');
    expect(p.flag_aa).toBe(true);
    nameserver.setRecords(RECORDS);
    await expect(resolver().resolve4(`web.${TAILNET}`)).resolves.toEqual([
      '100.100.1.1',
    ]);
  });

  it("relays the nameserver's REFUSED for names outside ts.net", async () => {
    const direct = new Resolver({ timeout: 2000, tries: 1 });
    direct.setServers([nameserver.address]);
    await expect(direct.resolve4('web.example.internal')).rejects.toMatchObject(
      { code: 'EREFUSED' },
    );
    coreDns.setCorefile(
      `${withStanza()}example.internal:53 {\n    forward . ${target(NAMESERVER_IP)}\n}\n`,
    );
    await expect(
      resolver().resolve4('web.example.internal'),
    ).rejects.toMatchObject({ code: 'EREFUSED' });
  });

  it('keeps the running configuration when a Corefile does not load, and says why', async () => {
    const good = withStanza();
    coreDns.setCorefile(good);
    await expect(resolver().resolve4(`web.${TAILNET}`)).resolves.toEqual([
      '100.100.1.1',
    ]);

    coreDns.setCorefile(`${good}other.example:53 {\n    bogus\n}\n`);
    expect(logs.join('\n')).toMatch(
      /Corefile changed but reload failed: .*Unknown directive 'bogus'/,
    );
    await expect(resolver().resolve4(`web.${TAILNET}`)).resolves.toEqual([
      '100.100.1.1',
    ]);

    logs.length = 0;
    coreDns.setCorefile(
      good.replace(
        `forward . ${target(NAMESERVER_IP)}`,
        'forward . tailscale-nameserver',
      ),
    );
    expect(logs.join('\n')).toMatch(
      /reload failed: plugin\/forward: not an IP address or file: "tailscale-nameserver"/,
    );

    logs.length = 0;
    coreDns.setCorefile(`${good}other.example:53 {\n    errors\n`);
    expect(logs.join('\n')).toMatch(
      /\[WARNING\] plugin\/reload: Corefile parse failed: \/etc\/coredns\/Corefile:\d+ - Syntax error: Unexpected token 'errors', expecting '}'/,
    );
    await expect(resolver().resolve4(`web.${TAILNET}`)).resolves.toEqual([
      '100.100.1.1',
    ]);

    logs.length = 0;
    coreDns.setCorefile(`${good}${TAILNET}:53 {\n    forward . 127.0.0.1\n}\n`);
    expect(logs.join('\n')).toMatch(
      /cannot serve dns:\/\/tailmesh-test\.ts\.net\.:53 - it is already defined/,
    );
    await expect(resolver().resolve4(`web.${TAILNET}`)).resolves.toEqual([
      '100.100.1.1',
    ]);
  });

  it('switches configuration on reload: without the stanza, tailnet names are NXDOMAIN again', async () => {
    coreDns.setCorefile(KUBEADM);
    await expect(resolver().resolve4(`web.${TAILNET}`)).rejects.toMatchObject({
      code: 'ENOTFOUND',
    });
    coreDns.setCorefile(withStanza());
    await expect(resolver().resolve4(`web.${TAILNET}`)).resolves.toEqual([
      '100.100.1.1',
    ]);
  });

  it('honours a server block that an injected value adds, as CoreDNS would', async () => {
    // A "nameserver IP" carrying a Corefile fragment: it closes the stanza and opens a block that
    // is more specific than `.` for cluster.local.
    const injected = `${target(NAMESERVER_IP)}\n}\ncluster.local:53 {\n    forward . ${target(ROGUE_IP)}`;
    const corefile = upsertTailnetStanza(KUBEADM, TAILNET, injected).corefile;
    coreDns.setCorefile(corefile);
    expect(logs).toContain('[INFO] Reloading complete');
    await expect(
      resolver().resolve4('web.mesh.svc.cluster.local'),
    ).resolves.toEqual(['6.6.6.6']);
    await expect(resolver().resolve4(`web.${TAILNET}`)).resolves.toEqual([
      '100.100.1.1',
    ]);
    coreDns.setCorefile(withStanza());
    await expect(
      resolver().resolve4('web.mesh.svc.cluster.local'),
    ).resolves.toEqual(['10.96.10.10']);
  });

  it('truncates UDP answers over 512 bytes unless EDNS allows more; the client retries over TCP', async () => {
    const plain = await ask('big.mesh.svc.cluster.local', 'A');
    expect(plain.flag_tc).toBe(true);
    expect(plain.answers?.length).toBeGreaterThan(0);
    expect(plain.answers?.length).toBeLessThan(40);
    const edns = await ask('big.mesh.svc.cluster.local', 'A', { edns: 4096 });
    expect(edns.flag_tc).toBe(false);
    expect(edns.answers).toHaveLength(40);
    await expect(
      resolver().resolve4('big.mesh.svc.cluster.local'),
    ).resolves.toHaveLength(40);
  });

  it('answers SERVFAIL when the forward target does not answer', async () => {
    coreDns.setCorefile(
      upsertTailnetStanza(KUBEADM, TAILNET, target(BLACKHOLE_IP)).corefile,
    );
    const started = Date.now();
    const p = await ask(`web.${TAILNET}`, 'A');
    expect(rcode(p)).toBe('SERVFAIL');
    // forward.go: attempts of 2 s each until 5 s have passed.
    expect(Date.now() - started).toBeGreaterThanOrEqual(5000);
    expect(logs.join('\n')).toMatch(
      /\[ERROR\] plugin\/errors: 2 web\.tailmesh-test\.ts\.net\. A: read udp .*i\/o timeout/,
    );
  }, 20_000);

  it('answers SERVFAIL while the nameserver crash-loops on records it cannot load', async () => {
    coreDns.setCorefile(withStanza());
    nameserver.setRecords('{"version": "v2"}');
    const p = await ask(`web.${TAILNET}`, 'A');
    expect(rcode(p)).toBe('SERVFAIL');
    expect(logs.join('\n')).toMatch(/plugin\/errors: 2 .*ECONNREFUSED/);
    nameserver.setRecords(RECORDS);
    await eventually(() =>
      expect(resolver().resolve4(`web.${TAILNET}`)).resolves.toEqual([
        '100.100.1.1',
      ]),
    );
  }, 20_000);

  it('REFUSED for names no server block covers', async () => {
    coreDns.setCorefile(
      `${TAILNET}:53 {\n    forward . ${target(NAMESERVER_IP)}\n    reload\n}\n`,
    );
    await expect(
      resolver().resolve4('web.mesh.svc.cluster.local'),
    ).rejects.toMatchObject({ code: 'EREFUSED' });
    await expect(resolver().resolve4(`web.${TAILNET}`)).resolves.toEqual([
      '100.100.1.1',
    ]);
    // v1.12.1 keeps a server block's zone in the case it was written and matches lower-cased
    // query names against it (coredns/coredns#6624): an upper-case zone is never reached.
    coreDns.setCorefile(
      `${TAILNET.toUpperCase()}:53 {\n    forward . ${target(NAMESERVER_IP)}\n    reload\n}\n`,
    );
    await expect(resolver().resolve4(`web.${TAILNET}`)).rejects.toMatchObject({
      code: 'EREFUSED',
    });
    coreDns.setCorefile(KUBEADM);
  });
});

describe('CoreDNS stand-in: reload and upstream', () => {
  let coreDns: CoreDns;
  let port: number;
  const logs: string[] = [];
  const upstreamQueries: string[] = [];
  const resolver = () => {
    const r = new Resolver({ timeout: 3000, tries: 1 });
    r.setServers([coreDns.address]);
    return r;
  };

  beforeAll(async () => {
    port = await pickPort(OTHER_COREDNS_IP);
    coreDns = await startCoreDns({
      host: OTHER_COREDNS_IP,
      port,
      kubernetes: source,
      log: m => logs.push(m),
      // The outside world: knows example.com only.
      upstream: async (q: Packet): Promise<Packet> => {
        const name = q.questions?.[0]?.name ?? '';
        upstreamQueries.push(name);
        const known = name === 'example.com' && q.questions?.[0]?.type === 'A';
        return {
          id: q.id,
          type: 'response',
          flags:
            dnsPacket.RECURSION_DESIRED |
            dnsPacket.RECURSION_AVAILABLE |
            (name === 'example.com' ? 0 : 3),
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
    coreDns.setCorefile('.:53 {\n    hosts /etc/hosts\n}\n');
    expect(logs.join('\n')).toMatch(
      /cannot start .*plugin\/hosts: hosts is a CoreDNS plugin this stand-in does not model/,
    );
    coreDns.setCorefile('.:53 {\n    forward . /etc/resolv.conf\n}\n');
    await eventually(() =>
      expect(resolver().resolve4('example.com')).resolves.toEqual([
        '93.184.216.34',
      ]),
    );
    expect(upstreamQueries).toContain('example.com');
  });

  it('without the reload plugin, keeps its Corefile until restarted', async () => {
    coreDns.setCorefile(KUBEADM);
    expect(logs.join('\n')).toMatch(/no reload plugin/);
    await expect(
      resolver().resolve4('web.mesh.svc.cluster.local'),
    ).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });
});

describe('Corefile parsing (coredns/caddy caddyfile)', () => {
  const parse = (text: string) => internals.parseCorefile(text, true);

  it("reads kubeadm's Corefile into one block, directives grouped with their nested blocks", () => {
    const [block, ...rest] = parse(KUBEADM);
    expect(rest).toEqual([]);
    expect(block.keys).toEqual(['.:53']);
    expect([...block.tokens.keys()]).toEqual([
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
    expect(block.tokens.get('kubernetes')?.map(t => t.text)).toEqual([
      'kubernetes',
      'cluster.local',
      'in-addr.arpa',
      'ip6.arpa',
      '{',
      'pods',
      'insecure',
      'fallthrough',
      'in-addr.arpa',
      'ip6.arpa',
      'ttl',
      '30',
      '}',
    ]);
  });

  it('handles comments, quotes, several keys, snippets and env references', () => {
    const blocks = parse(
      [
        '(common) {',
        '  errors',
        '}',
        'a.example b.example:53 { # two zones',
        '  import common',
        '  forward . "10.0.0.1" # the upstream',
        '  log {$NOT_SET}',
        '}',
      ].join('\n'),
    );
    expect(blocks).toHaveLength(1);
    expect(blocks[0].keys).toEqual(['a.example', 'b.example:53']);
    expect([...blocks[0].tokens.keys()]).toEqual(['errors', 'forward', 'log']);
    expect(blocks[0].tokens.get('forward')?.map(t => t.text)).toEqual([
      'forward',
      '.',
      '10.0.0.1',
    ]);
    expect(blocks[0].tokens.get('log')?.map(t => t.text)).toEqual(['log', '']);
  });

  it('refuses unknown directives and unbalanced braces, as CoreDNS does', () => {
    expect(() => parse('.:53 {\n  forwardd . 1.1.1.1\n}\n')).toThrow(
      "/etc/coredns/Corefile:2 - Error during parsing: Unknown directive 'forwardd'",
    );
    expect(() => parse('.:53 {\n  forward . 1.1.1.1 {\n')).toThrow(
      /Unexpected EOF/,
    );
    // caddy lets a directive's block take the server block's closing brace, as here.
    expect(parse('.:53 {\n  forward . 1.1.1.1 {\n}\n')).toHaveLength(1);
    expect(() => parse('.:53 {\n  errors }\n')).toThrow(/Unexpected '}'/);
  });

  it('expands reverse CIDR zones on and off octet boundaries', () => {
    expect(internals.splitHostPort('10.0.0.0/24:53')).toEqual({
      hosts: ['0.0.10.in-addr.arpa.'],
      port: '53',
    });
    expect(internals.splitHostPort('10.0.0.0/23').hosts).toEqual([
      '0.0.10.in-addr.arpa.',
      '1.0.10.in-addr.arpa.',
    ]);
    expect(internals.splitHostPort('cluster.local:053')).toEqual({
      hosts: ['cluster.local'],
      port: '53',
    });
  });
});
