import net from 'node:net';
import * as dnsPacket from 'dns-packet';
import {
  acceptAction,
  formatIPv6,
  isDomainName,
  isSubDomain,
  listenDns,
  newMsg,
  packMsg,
  parseGoDuration,
  parseGoIP,
  readHeader,
  rejectReply,
  splitDomainName,
  to4,
  truncateMsg,
  unpackMsg,
  unpackName,
  type RR,
} from './dnsServer';

describe('names (miekg/dns)', () => {
  it('unpacks names into the escaped presentation form', () => {
    const wire = Buffer.from([3, 0x61, 0x2e, 0x01, 2, 0x20, 0xff, 0]);
    expect(unpackName(wire, 0)).toEqual({
      name: 'a\\.\\001.\\ \\255.',
      end: 8,
    });
    expect(unpackName(Buffer.from([0]), 0)).toEqual({ name: '.', end: 1 });
    // A pointer: the offset after the pointer is where the name ends.
    const ptr = Buffer.from([2, 0x74, 0x73, 0, 3, 0x66, 0x6f, 0x6f, 0xc0, 0]);
    expect(unpackName(ptr, 4)).toEqual({ name: 'foo.ts.', end: 10 });
    expect(() => unpackName(Buffer.from([5, 0x61]), 0)).toThrow();
  });

  it('compares names label-wise and case-insensitively', () => {
    expect(isSubDomain('ts.net.', 'web.Tailmesh.TS.net.')).toBe(true);
    expect(isSubDomain('ts.net.', 'ts.net.')).toBe(true);
    expect(isSubDomain('.', 'anything.')).toBe(true);
    expect(isSubDomain('ts.net.', 'xts.net.')).toBe(false);
    // An escaped dot is part of a label: "a\.ts" is one label, under net. only.
    expect(isSubDomain('ts.net.', 'a\\.ts.net.')).toBe(false);
    expect(isSubDomain('a.ts.net.', 'x.a\\.ts.net.')).toBe(false);
    expect(splitDomainName('a.b\\.c.d.')).toEqual(['a', 'b\\.c', 'd']);
    expect(isDomainName('cluster.local')).toBe(true);
    expect(isDomainName('a..b')).toBe(false);
    expect(isDomainName(`${'x'.repeat(64)}.b`)).toBe(false);
  });
});

describe('Go value parsing', () => {
  it('parses IPs as net.ParseIP does since Go 1.22', () => {
    expect(to4(parseGoIP('100.64.0.1') as Uint8Array)).toEqual(
      Uint8Array.from([100, 64, 0, 1]),
    );
    expect(parseGoIP('100.064.0.1')).toBeUndefined();
    expect(parseGoIP('1.2.3')).toBeUndefined();
    expect(parseGoIP('256.1.1.1')).toBeUndefined();
    expect(to4(parseGoIP('::ffff:1.2.3.4') as Uint8Array)).toEqual(
      Uint8Array.from([1, 2, 3, 4]),
    );
    expect(formatIPv6(parseGoIP('fd7a:115c:a1e0::1') as Uint8Array)).toBe(
      'fd7a:115c:a1e0:0:0:0:0:1',
    );
    expect(parseGoIP('fe80::1%eth0')).toBeUndefined();
    expect(parseGoIP('1:2:3:4:5:6:7:8::')).toBeUndefined();
    expect(parseGoIP('1::2::3')).toBeUndefined();
    expect(parseGoIP('12345::')).toBeUndefined();
    expect(parseGoIP('')).toBeUndefined();
    expect(parseGoIP('localhost')).toBeUndefined();
  });

  it('parses durations as time.ParseDuration does', () => {
    expect(parseGoDuration('5s')).toBe(5e9);
    expect(parseGoDuration('1m30s')).toBe(90e9);
    expect(parseGoDuration('1.5h')).toBe(5400e9);
    expect(parseGoDuration('0')).toBe(0);
    expect(parseGoDuration('-2ms')).toBe(-2e6);
    expect(() => parseGoDuration('5')).toThrow(
      'time: missing unit in duration "5"',
    );
    expect(() => parseGoDuration('5 s')).toThrow(
      'time: unknown unit " s" in duration "5 s"',
    );
    expect(() => parseGoDuration('')).toThrow();
    expect(() => parseGoDuration('.s')).toThrow();
  });
});

describe('messages', () => {
  const header = (bits: number, counts: [number, number, number, number]) => {
    const b = Buffer.alloc(12);
    b.writeUInt16BE(7, 0);
    b.writeUInt16BE(bits, 2);
    counts.forEach((c, i) => b.writeUInt16BE(c, 4 + 2 * i));
    return b;
  };

  it('accepts and rejects headers as miekg/dns defaultMsgAcceptFunc does', () => {
    const h = (bits: number, counts: [number, number, number, number]) =>
      acceptAction(
        readHeader(header(bits, counts)) ?? {
          id: 0,
          bits: 0,
          qdcount: 0,
          ancount: 0,
          nscount: 0,
          arcount: 0,
        },
      );
    expect(h(0, [1, 0, 0, 0])).toBe('accept');
    expect(h(4 << 11, [1, 1, 0, 0])).toBe('accept'); // NOTIFY with an SOA
    expect(h(0x8000, [1, 0, 0, 0])).toBe('ignore');
    expect(h(5 << 11, [1, 0, 0, 0])).toBe('notimp');
    expect(h(0, [2, 0, 0, 0])).toBe('reject');
    expect(h(0, [1, 0, 0, 3])).toBe('reject');
    expect(readHeader(Buffer.alloc(11))).toBeUndefined();
  });

  it('rejects with the header only, keeping RD, CD and the like', () => {
    const req = readHeader(
      header(0x0100 | 0x0010 | 0x0400 | 0x0040 | (2 << 11), [2, 0, 0, 0]),
    );
    if (!req) throw new Error('no header');
    const formerr = rejectReply(req, 'reject');
    expect(formerr.readUInt16BE(2)).toBe(0x8000 | 0x0100 | 0x0010 | 1);
    const notimp = rejectReply(req, 'notimp');
    expect(notimp.readUInt16BE(2)).toBe(
      0x8000 | (2 << 11) | 0x0100 | 0x0010 | 4,
    );
  });

  it('truncates to 512 bytes with compression, keeps the OPT record, sets TC', () => {
    const m = newMsg();
    m.response = true;
    m.question = [
      { name: 'big.mesh.svc.cluster.local', type: 'A', class: 'IN' },
    ];
    m.answer = Array.from({ length: 40 }, (_, i): RR => ({
      name: 'big.mesh.svc.cluster.local',
      type: 'A',
      ttl: 30,
      data: `10.0.0.${i}`,
    }));
    m.extra = [
      {
        name: '.',
        type: 'OPT',
        udpPayloadSize: 512,
        extendedRcode: 0,
        ednsVersion: 0,
        flags: 0,
        flag_do: false,
        options: [],
      },
    ];
    truncateMsg(m, 512);
    expect(m.truncated).toBe(true);
    expect(m.compress).toBe(true);
    const wire = packMsg(m);
    expect(wire.length).toBeLessThanOrEqual(512);
    // 12 + 32 (question) + 11 (OPT) + 28 answers of 16 bytes compressed.
    expect(m.answer).toHaveLength(28);
    const decoded = dnsPacket.decode(wire);
    expect(decoded.answers?.[27]).toMatchObject({
      name: 'big.mesh.svc.cluster.local',
      data: '10.0.0.27',
    });
    expect(decoded.additionals).toEqual([
      expect.objectContaining({ type: 'OPT' }),
    ]);
    expect(unpackMsg(wire).answer).toHaveLength(28);
  });

  it('leaves a message that fits alone, uncompressed', () => {
    const m = newMsg();
    m.question = [{ name: 'a.example', type: 'A' }];
    m.answer = [
      { name: 'a.example', type: 'CNAME', ttl: 1, data: 'b.example' },
    ];
    truncateMsg(m, 512);
    expect(m.truncated).toBe(false);
    expect(m.compress).toBe(false);
  });
});

describe('listenDns', () => {
  it('serves UDP and pipelined TCP, one reply per query, in order', async () => {
    const seen: string[] = [];
    const listener = await listenDns({
      host: '127.0.0.61',
      port: await freePort('127.0.0.61'),
      tcpIdleTimeoutMs: 1000,
      log: () => undefined,
      handler: async (q, client) => {
        seen.push(client.transport);
        const p = dnsPacket.decode(q);
        // Answer the first query late: replies must still come back in order.
        if (p.id === 1) await new Promise(r => setTimeout(r, 50));
        return dnsPacket.encode({
          id: p.id,
          type: 'response',
          questions: p.questions,
        });
      },
    });
    const [host, port] = listener.address.split(':');
    const ids = await new Promise<number[]>((resolve, reject) => {
      const s = net.connect({ host, port: Number(port) }, () => {
        const frames = [1, 2].map(id => {
          const m = dnsPacket.encode({
            id,
            type: 'query',
            questions: [{ name: 'x', type: 'A' }],
          });
          const len = Buffer.alloc(2);
          len.writeUInt16BE(m.length);
          return Buffer.concat([len, m]);
        });
        s.write(Buffer.concat(frames));
      });
      let buf = Buffer.alloc(0);
      const got: number[] = [];
      s.on('data', d => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          got.push(buf.readUInt16BE(2));
          buf = buf.subarray(2 + buf.readUInt16BE(0));
        }
        if (got.length === 2) {
          s.destroy();
          resolve(got);
        }
      });
      s.on('error', reject);
    });
    expect(ids).toEqual([1, 2]);
    expect(seen).toEqual(['tcp', 'tcp']);
    await listener.close();
  });
});

async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen({ host, port: 0 }, () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
