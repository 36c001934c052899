import dgram from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import * as dnsPacket from 'dns-packet';
import net from 'node:net';
import { exchange } from './dnsServer';
import {
  internals,
  startK8sNameserver,
  type K8sNameserver,
} from './k8sNameserver';

// An address of its own, so this file can run next to coreDns.test.ts.
const HOST = '127.0.0.60';
const TAILNET = 'tailmesh-test.ts.net';

/** Port 53 when this process may bind it (root), else a free port. */
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

function ask(port: number, name: string, type: dnsPacket.RecordType) {
  return new Promise<dnsPacket.DecodedPacket>((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      reject(new Error('no reply'));
    }, 1500);
    s.on('error', err => {
      clearTimeout(timer);
      s.close();
      reject(err);
    });
    s.on('message', m => {
      clearTimeout(timer);
      s.close();
      resolve(dnsPacket.decode(m));
    });
    const q = dnsPacket.encode({
      id: 77,
      type: 'query',
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ name, type }],
    });
    s.connect(port, HOST, () => s.send(q));
  });
}

const rcode = (p: dnsPacket.DecodedPacket) =>
  (p as unknown as { rcode: string }).rcode;

const records = (
  ip4: Record<string, string[]>,
  ip6?: Record<string, string[]>,
) => JSON.stringify({ version: 'v1alpha1', ip4, ...(ip6 ? { ip6 } : {}) });

/** Retries an assertion briefly: a restart re-opens the sockets asynchronously. */
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

describe('k8s-nameserver stand-in', () => {
  let port: number;
  let ns: K8sNameserver;
  const logs: string[] = [];
  const resolver = new Resolver({ timeout: 2000, tries: 1 });

  beforeAll(async () => {
    port = await pickPort(HOST);
    ns = await startK8sNameserver({ host: HOST, port, log: m => logs.push(m) });
    resolver.setServers([ns.address]);
  });

  afterAll(() => ns.close());

  beforeEach(() => {
    logs.length = 0;
    ns.setRecords(undefined);
  });

  it('starts with no records (dnsrecords has no records.json yet): NXDOMAIN, authoritative', async () => {
    const p = await ask(port, `web.${TAILNET}`, 'A');
    expect(rcode(p)).toBe('NXDOMAIN');
    expect(p).toMatchObject({
      id: 77,
      flag_aa: true,
      flag_ra: false,
      flag_rd: true,
    });
    await expect(resolver.resolve4(`web.${TAILNET}`)).rejects.toMatchObject({
      code: 'ENOTFOUND',
    });
  });

  it('answers A from records.json with TTL 0, over UDP and TCP', async () => {
    ns.setRecords(
      records({ [`web.${TAILNET}`]: ['100.64.0.5', '100.64.0.6'] }),
    );
    const p = await ask(port, `web.${TAILNET}`, 'A');
    expect(rcode(p)).toBe('NOERROR');
    expect(p.flag_aa).toBe(true);
    expect(p.answers).toEqual([
      expect.objectContaining({
        name: `web.${TAILNET}`,
        ttl: 0,
        data: '100.64.0.5',
      }),
      expect.objectContaining({
        name: `web.${TAILNET}`,
        ttl: 0,
        data: '100.64.0.6',
      }),
    ]);
    await expect(resolver.resolve4(`web.${TAILNET}`)).resolves.toEqual([
      '100.64.0.5',
      '100.64.0.6',
    ]);
    const question = { name: `web.${TAILNET}`, type: 'A' as const };
    const tcp = await exchange(
      HOST,
      port,
      { id: 5, questions: [question] },
      'tcp',
      1500,
    );
    expect(tcp.answers).toEqual([
      expect.objectContaining({ data: '100.64.0.5' }),
      expect.objectContaining({ data: '100.64.0.6' }),
    ]);
  });

  it('AAAA: NODATA for an IPv4-only name, NXDOMAIN for an unknown one, records when there are', async () => {
    ns.setRecords(
      records(
        {
          [`web.${TAILNET}`]: ['100.64.0.5'],
          [`dual.${TAILNET}`]: ['100.64.0.7'],
        },
        { [`dual.${TAILNET}`]: ['fd7a:115c:a1e0::7'] },
      ),
    );
    const nodata = await ask(port, `web.${TAILNET}`, 'AAAA');
    expect(rcode(nodata)).toBe('NOERROR');
    expect(nodata.answers).toEqual([]);
    await expect(resolver.resolve6(`web.${TAILNET}`)).rejects.toMatchObject({
      code: 'ENODATA',
    });
    expect(rcode(await ask(port, `nope.${TAILNET}`, 'AAAA'))).toBe('NXDOMAIN');
    await expect(resolver.resolve6(`dual.${TAILNET}`)).resolves.toEqual([
      'fd7a:115c:a1e0::7',
    ]);
  });

  it('REFUSED outside ts.net, NOTIMP for other types within it', async () => {
    ns.setRecords(
      records({
        'web.example.com': ['10.0.0.1'],
        [`web.${TAILNET}`]: ['100.64.0.5'],
      }),
    );
    const refused = await ask(port, 'web.example.com', 'A');
    expect(rcode(refused)).toBe('REFUSED');
    expect(refused.flag_aa).toBe(false);
    await expect(resolver.resolve4('web.example.com')).rejects.toMatchObject({
      code: 'EREFUSED',
    });
    expect(rcode(await ask(port, `web.${TAILNET}`, 'TXT'))).toBe('NOTIMP');
    // The zone matches case-insensitively, the records case-sensitively (a Go map).
    expect(rcode(await ask(port, 'WEB.tailmesh-test.TS.NET', 'A'))).toBe(
      'NXDOMAIN',
    );
  });

  it('skips addresses of the wrong family, keeps the rest', async () => {
    ns.setRecords(
      records(
        {
          [`a.${TAILNET}`]: [
            '100.64.0.1',
            'fd7a::1',
            'not-an-ip',
            '100.64.0.3',
          ],
        },
        { [`a.${TAILNET}`]: ['100.64.0.1', 'fd7a:115c:a1e0::1'] },
      ),
    );
    await expect(resolver.resolve4(`a.${TAILNET}`)).resolves.toEqual([
      '100.64.0.1',
      '100.64.0.3',
    ]);
    await expect(resolver.resolve6(`a.${TAILNET}`)).resolves.toEqual([
      'fd7a:115c:a1e0::1',
    ]);
    expect(logs.filter(l => l.includes('skipping this record'))).toHaveLength(
      3,
    );
  });

  it('crash-loops on a configuration that does not load (nothing answers) until it is fixed', async () => {
    ns.setRecords(records({ [`web.${TAILNET}`]: ['100.64.0.5'] }));
    await expect(resolver.resolve4(`web.${TAILNET}`)).resolves.toEqual([
      '100.64.0.5',
    ]);
    for (const bad of [
      '{"version": "v1alpha2", "ip4": {}}',
      '{not json',
      '[]',
    ]) {
      ns.setRecords(bad);
      await eventually(() =>
        expect(ask(port, `web.${TAILNET}`, 'A')).rejects.toMatchObject({
          code: 'ECONNREFUSED',
        }),
      );
    }
    expect(
      logs.some(l => l.includes('unsupported configuration version v1alpha2')),
    ).toBe(true);
    ns.setRecords(records({ [`web.${TAILNET}`]: ['100.64.0.8'] }));
    await eventually(() =>
      expect(resolver.resolve4(`web.${TAILNET}`)).resolves.toEqual([
        '100.64.0.8',
      ]),
    );
  });
});

describe('records.json as the nameserver loads it', () => {
  const load = (json: string | undefined) =>
    internals.loadRecords(json, () => undefined);

  it('an absent or empty key is no records; a wrong version or wrong types are fatal', () => {
    expect(load(undefined)).not.toBeInstanceOf(Error);
    expect(load('')).not.toBeInstanceOf(Error);
    expect(load('null')).toBeInstanceOf(Error);
    expect(load('{"version": 1}')).toBeInstanceOf(Error);
    expect(
      load('{"version": "v1alpha1", "ip4": {"a.ts.net": "1.2.3.4"}}'),
    ).toBeInstanceOf(Error);
    expect(
      load('{"version": "v1alpha1", "ip4": {"a.ts.net": [1]}}'),
    ).toBeInstanceOf(Error);
    expect(
      load('{"version": "v1alpha1", "ip4": {"a.ts.net.": ["1.2.3.4"]}}'),
    ).toEqual({
      ip4: new Map([['a.ts.net', ['1.2.3.4']]]),
      ip6: new Map(),
    });
  });
});
