import dgram from 'node:dgram';
import net from 'node:net';
import { Resolver } from 'node:dns/promises';
import * as dnsPacket from 'dns-packet';
import {
  internals,
  startK8sNameserver,
  type K8sNameserver,
} from './k8sNameserver';

// Addresses of their own, so this file can run next to coreDns.test.ts.
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

function rawUdp(host: string, port: number, message: Buffer, timeoutMs = 1500) {
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

function rawTcp(host: string, port: number, message: Buffer) {
  return new Promise<Buffer>((resolve, reject) => {
    const s = net.connect({ host, port }, () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(message.length);
      s.write(Buffer.concat([len, message]));
    });
    let buf = Buffer.alloc(0);
    s.on('data', d => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        s.destroy();
        resolve(buf.subarray(2, 2 + buf.readUInt16BE(0)));
      }
    });
    s.on('error', reject);
  });
}

const q = (name: string, type: dnsPacket.RecordType, id = 4242) =>
  dnsPacket.encode({
    id,
    type: 'query',
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type, class: 'IN' }],
  });

const rcode = (p: dnsPacket.DecodedPacket) =>
  (p as unknown as { rcode: string }).rcode;

const records = (
  ip4: Record<string, string[]>,
  ip6?: Record<string, string[]>,
) => JSON.stringify({ version: 'v1alpha1', ip4, ...(ip6 ? { ip6 } : {}) });

describe('k8s-nameserver stand-in', () => {
  let port: number;
  let ns: K8sNameserver;
  const logs: string[] = [];
  const resolver = new Resolver({ timeout: 2000, tries: 1 });
  const ask = async (name: string, type: dnsPacket.RecordType, id?: number) => {
    const reply = await rawUdp(HOST, port, q(name, type, id));
    if (!reply) throw new Error('no reply');
    return dnsPacket.decode(reply);
  };

  beforeAll(async () => {
    port = await pickPort(HOST);
    ns = await startK8sNameserver({ host: HOST, port, log: m => logs.push(m) });
    resolver.setServers([ns.address]);
  });

  afterAll(async () => {
    await ns.close();
  });

  beforeEach(() => {
    logs.length = 0;
    ns.setRecords(undefined);
  });

  it('starts with no records (the operator creates dnsrecords without records.json): NXDOMAIN', async () => {
    const p = await ask(`web.${TAILNET}`, 'A');
    expect(rcode(p)).toBe('NXDOMAIN');
    expect(p.flag_aa).toBe(true);
    expect(p.flag_ra).toBe(false);
    expect(p.flag_rd).toBe(true);
    await expect(resolver.resolve4(`web.${TAILNET}`)).rejects.toMatchObject({
      code: 'ENOTFOUND',
    });
  });

  it('answers A records from records.json, authoritative, TTL 0, in the order given', async () => {
    ns.setRecords(
      records({ [`web.${TAILNET}`]: ['100.64.0.5', '100.64.0.6'] }),
    );
    const p = await ask(`web.${TAILNET}`, 'A', 77);
    expect(p.id).toBe(77);
    expect(rcode(p)).toBe('NOERROR');
    expect(p.flag_aa).toBe(true);
    expect(p.flag_ra).toBe(false);
    expect(p.answers).toEqual([
      expect.objectContaining({
        name: `web.${TAILNET}`,
        type: 'A',
        ttl: 0,
        data: '100.64.0.5',
      }),
      expect.objectContaining({
        name: `web.${TAILNET}`,
        type: 'A',
        ttl: 0,
        data: '100.64.0.6',
      }),
    ]);
    expect(p.additionals).toEqual([]); // no EDNS in replies
    await expect(resolver.resolve4(`web.${TAILNET}`)).resolves.toEqual([
      '100.64.0.5',
      '100.64.0.6',
    ]);
  });

  it('answers over TCP too', async () => {
    ns.setRecords(records({ [`web.${TAILNET}`]: ['100.64.0.5'] }));
    const p = dnsPacket.decode(
      await rawTcp(HOST, port, q(`web.${TAILNET}`, 'A')),
    );
    expect(p.answers).toEqual([
      expect.objectContaining({ type: 'A', data: '100.64.0.5' }),
    ]);
  });

  it('AAAA: NODATA for a name with only IPv4 records, NXDOMAIN without any, records when there are', async () => {
    ns.setRecords(
      records(
        {
          [`web.${TAILNET}`]: ['100.64.0.5'],
          [`dual.${TAILNET}`]: ['100.64.0.7'],
        },
        {
          [`dual.${TAILNET}`]: ['fd7a:115c:a1e0::7'],
        },
      ),
    );
    const nodata = await ask(`web.${TAILNET}`, 'AAAA');
    expect(rcode(nodata)).toBe('NOERROR');
    expect(nodata.flag_aa).toBe(true);
    expect(nodata.answers).toEqual([]);
    await expect(resolver.resolve6(`web.${TAILNET}`)).rejects.toMatchObject({
      code: 'ENODATA',
    });
    expect(rcode(await ask(`nope.${TAILNET}`, 'AAAA'))).toBe('NXDOMAIN');
    await expect(resolver.resolve6(`dual.${TAILNET}`)).resolves.toEqual([
      'fd7a:115c:a1e0::7',
    ]);
  });

  it('REFUSED for names outside ts.net (no handler on the ServeMux), whatever the type', async () => {
    ns.setRecords(records({ 'web.example.com': ['10.0.0.1'] }));
    const p = await ask('web.example.com', 'A');
    expect(rcode(p)).toBe('REFUSED');
    expect(p.flag_aa).toBe(false);
    expect(p.questions).toEqual([
      expect.objectContaining({ name: 'web.example.com', type: 'A' }),
    ]);
    expect(rcode(await ask('ts.net.example.com', 'TXT'))).toBe('REFUSED');
    await expect(resolver.resolve4('web.example.com')).rejects.toMatchObject({
      code: 'EREFUSED',
    });
  });

  it('NOTIMP for other record types under ts.net', async () => {
    ns.setRecords(records({ [`web.${TAILNET}`]: ['100.64.0.5'] }));
    for (const type of ['TXT', 'CNAME', 'SRV', 'MX'] as const) {
      const p = await ask(`web.${TAILNET}`, type);
      expect(rcode(p)).toBe('NOTIMP');
      expect(p.flag_aa).toBe(false);
    }
    expect(logs.some(l => l.includes('unsupported record type'))).toBe(true);
  });

  it('matches ts.net case-insensitively but looks records up case-sensitively, as upstream does', async () => {
    ns.setRecords(records({ [`web.${TAILNET}`]: ['100.64.0.5'] }));
    expect(rcode(await ask(`web.TAILMESH-TEST.TS.NET`, 'A'))).toBe('NXDOMAIN');
    expect(rcode(await ask(`WEB.${TAILNET}`, 'A'))).toBe('NXDOMAIN');
  });

  it('FORMERR, with the request echoed, for a name dnsname.ToFQDN refuses', async () => {
    // A first label of 20 bytes 0x01 is "\001" x 20 in presentation form: 80 > 63 characters.
    const label = Buffer.alloc(20, 1);
    const rest = dnsPacket.encode({
      id: 9,
      type: 'query',
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ name: `web.${TAILNET}`, type: 'A' }],
    });
    const msg = Buffer.concat([
      rest.subarray(0, 12),
      Buffer.from([label.length]),
      label,
      rest.subarray(12),
    ]);
    const reply = await rawUdp(HOST, port, msg);
    expect(reply).toBeDefined();
    const p = dnsPacket.decode(reply as Buffer);
    expect(rcode(p)).toBe('FORMERR');
    expect(p.id).toBe(9);
    expect(p.flag_qr).toBe(true);
    expect(p.questions).toHaveLength(1);
  });

  it('rejects malformed headers as miekg/dns does: FORMERR, NOTIMP, or silence', async () => {
    const base = q(`web.${TAILNET}`, 'A', 5);
    const noQuestion = Buffer.from(base.subarray(0, 12));
    noQuestion.writeUInt16BE(0, 4);
    const formerr = dnsPacket.decode(
      (await rawUdp(HOST, port, noQuestion)) as Buffer,
    );
    expect(rcode(formerr)).toBe('FORMERR');
    expect(formerr.questions).toEqual([]);

    const update = Buffer.from(base);
    update.writeUInt16BE((5 << 11) | dnsPacket.RECURSION_DESIRED, 2); // opcode UPDATE
    const notimp = (await rawUdp(HOST, port, update)) as Buffer;
    expect(notimp.readUInt16BE(2) & 0xf).toBe(4);
    expect((notimp.readUInt16BE(2) >> 11) & 0xf).toBe(5);

    const response = Buffer.from(base);
    response.writeUInt16BE(0x8000, 2);
    expect(await rawUdp(HOST, port, response, 300)).toBeUndefined();

    // QDCOUNT 1 but no question: miekg/dns returns just the header, the ServeMux finds no
    // handler for it and answers REFUSED.
    const headerOnly = Buffer.from(base.subarray(0, 12));
    const refused = dnsPacket.decode(
      (await rawUdp(HOST, port, headerOnly)) as Buffer,
    );
    expect(rcode(refused)).toBe('REFUSED');
  });

  it('skips invalid names and addresses, keeps the rest', async () => {
    ns.setRecords(
      JSON.stringify({
        version: 'v1alpha1',
        ip4: {
          [`a.${TAILNET}`]: [
            '100.64.0.1',
            '100.064.0.2',
            'fd7a::1',
            '::ffff:100.64.0.3',
            '',
          ],
          [`bad..${TAILNET}`]: ['100.64.0.9'],
        },
        ip6: {
          [`a.${TAILNET}`]: ['100.64.0.1', 'fd7a:115c:a1e0::1', 'fe80::1%eth0'],
        },
      }),
    );
    await expect(resolver.resolve4(`a.${TAILNET}`)).resolves.toEqual([
      '100.64.0.1',
      '100.64.0.3',
    ]);
    await expect(resolver.resolve6(`a.${TAILNET}`)).resolves.toEqual([
      'fd7a:115c:a1e0::1',
    ]);
    expect(logs.filter(l => l.includes('skipping this record'))).toHaveLength(
      6,
    );
  });

  it('a configuration that does not load is fatal: the pod crash-loops until records.json is fixed', async () => {
    ns.setRecords(records({ [`web.${TAILNET}`]: ['100.64.0.5'] }));
    await expect(resolver.resolve4(`web.${TAILNET}`)).resolves.toEqual([
      '100.64.0.5',
    ]);

    ns.setRecords('{"version": "v1alpha2", "ip4": {}}');
    expect(
      logs.some(l => l.includes('unsupported configuration version v1alpha2')),
    ).toBe(true);
    await eventually(() =>
      expect(
        rawUdp(HOST, port, q(`web.${TAILNET}`, 'A')),
      ).rejects.toMatchObject({ code: 'ECONNREFUSED' }),
    );
    ns.setRecords('{not json');
    await expect(
      rawUdp(HOST, port, q(`web.${TAILNET}`, 'A')),
    ).rejects.toMatchObject({ code: 'ECONNREFUSED' });

    ns.setRecords(records({ [`web.${TAILNET}`]: ['100.64.0.8'] }));
    await eventually(() =>
      expect(resolver.resolve4(`web.${TAILNET}`)).resolves.toEqual([
        '100.64.0.8',
      ]),
    );
  });
});

describe('records.json as the nameserver decodes it', () => {
  const load = (json: string | undefined) =>
    internals.loadRecords(json, () => undefined);

  it('treats an absent or empty key as no records', () => {
    for (const json of [undefined, '']) {
      const r = load(json);
      expect(r).not.toBeInstanceOf(Error);
    }
  });

  it('fails on JSON null (version ""), wrong types and syntax errors, as Go does', () => {
    expect(load('null')).toEqual(
      new Error(
        'unsupported configuration version , supported versions are v1alpha1',
      ),
    );
    expect(load('[]')).toBeInstanceOf(Error);
    expect(load('{"version": 1}')).toBeInstanceOf(Error);
    expect(
      load('{"version": "v1alpha1", "ip4": {"a.ts.net": "1.2.3.4"}}'),
    ).toBeInstanceOf(Error);
    expect(
      load('{"version": "v1alpha1", "ip4": {"a.ts.net": [1]}}'),
    ).toBeInstanceOf(Error);
  });

  it('matches field names case-insensitively and ignores unknown fields', () => {
    const r = load(
      '{"VERSION": "v1alpha1", "Ip4": {"a.ts.net": ["1.2.3.4"]}, "extra": true}',
    );
    expect(r).not.toBeInstanceOf(Error);
    if (!(r instanceof Error)) expect([...r.ip4.keys()]).toEqual(['a.ts.net.']);
  });

  it('ToFQDN: adds the final dot, strips a leading one, checks all but the last label', () => {
    expect(internals.toFQDN('a.ts.net')).toBe('a.ts.net.');
    expect(internals.toFQDN('.a.ts.net.')).toBe('a.ts.net.');
    expect(internals.toFQDN('')).toBe('.');
    expect(internals.toFQDN('a..ts.net')).toBeInstanceOf(Error);
    expect(internals.toFQDN(`${'x'.repeat(64)}.ts.net`)).toBeInstanceOf(Error);
    expect(internals.toFQDN(`ts.${'x'.repeat(64)}`)).toBe(
      `ts.${'x'.repeat(64)}.`,
    );
  });
});

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
