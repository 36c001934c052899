import dgram from 'node:dgram';
import net from 'node:net';
import * as dnsPacket from 'dns-packet';
import {
  exchange,
  listenDns,
  reply,
  truncate,
  type DnsListener,
  type Packet,
} from './dnsServer';

const HOST = '127.0.0.61';

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

function rawUdp(port: number, message: Buffer, timeoutMs = 500) {
  return new Promise<Buffer | undefined>(resolve => {
    const s = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      resolve(undefined);
    }, timeoutMs);
    s.on('message', m => {
      clearTimeout(timer);
      s.close();
      resolve(m);
    });
    s.connect(port, HOST, () => s.send(message));
  });
}

const query = (id: number, flags = dnsPacket.RECURSION_DESIRED) =>
  dnsPacket.encode({
    id,
    type: 'query',
    flags,
    questions: [{ name: 'x.example', type: 'A' }],
  });

const manyAnswers = (n: number): Packet => ({
  type: 'response',
  questions: [{ name: 'big.mesh.svc.cluster.local', type: 'A' }],
  answers: Array.from({ length: n }, (_, i) => ({
    name: 'big.mesh.svc.cluster.local',
    type: 'A' as const,
    ttl: 30,
    data: `10.0.0.${i}`,
  })),
  additionals: [
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
  ],
});

describe('listenDns and exchange', () => {
  let port: number;
  let listener: DnsListener;
  const seen: string[] = [];

  beforeAll(async () => {
    port = await freePort(HOST);
    listener = await listenDns({
      host: HOST,
      port,
      log: () => undefined,
      handler: async (q, transport) => {
        seen.push(transport);
        // The first query answers late: TCP replies must still come back in order.
        if (q.id === 1) await new Promise(r => setTimeout(r, 50));
        return {
          ...reply(q, 0),
          answers: [{ name: 'x.example', type: 'A', data: '10.0.0.1' }],
        };
      },
    });
  });

  afterAll(() => listener.close());

  it('answers over UDP and TCP, with the query ID', async () => {
    const udp = await exchange(
      HOST,
      port,
      dnsPacket.decode(query(7)),
      'udp',
      1000,
    );
    expect(udp).toMatchObject({ id: 7, flag_qr: true, flag_rd: true });
    expect(udp.answers?.[0]).toMatchObject({ data: '10.0.0.1' });
    const tcp = await exchange(
      HOST,
      port,
      dnsPacket.decode(query(8)),
      'tcp',
      1000,
    );
    expect(tcp.id).toBe(8);
    expect(seen.slice(-2)).toEqual(['udp', 'tcp']);
  });

  it('answers pipelined TCP queries one by one, in order', async () => {
    const ids = await new Promise<number[]>((resolve, reject) => {
      const s = net.connect({ host: HOST, port }, () => {
        const frames = [1, 2].map(id => {
          const m = query(id);
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
  });

  it('drops responses and runts, NOTIMP for other opcodes, FORMERR without one question', async () => {
    const response = query(3);
    response.writeUInt16BE(0x8000, 2);
    expect(await rawUdp(port, response)).toBeUndefined();
    expect(await rawUdp(port, Buffer.alloc(11))).toBeUndefined();
    const update = (await rawUdp(port, query(4, 5 << 11))) as Buffer;
    expect(update.readUInt16BE(2)).toBe(0x8000 | (5 << 11) | 4);
    const none = Buffer.from(query(5).subarray(0, 12));
    none.writeUInt16BE(0, 4);
    const formerr = (await rawUdp(port, none)) as Buffer;
    expect(formerr.readUInt16BE(2) & 0xf).toBe(1);
    expect(formerr).toHaveLength(12);
  });

  it('exchange gives up after its timeout', async () => {
    const silent = dgram.createSocket('udp4');
    await new Promise<void>(r => silent.bind(0, HOST, () => r()));
    const { port: silentPort } = silent.address();
    await expect(
      exchange(HOST, silentPort, dnsPacket.decode(query(9)), 'udp', 200),
    ).rejects.toThrow(/i\/o timeout/);
    silent.close();
  });
});

describe('truncate', () => {
  it('keeps the records that fit in 512 bytes, and the OPT record, and sets TC', () => {
    const t = truncate(manyAnswers(40), 512);
    expect((t.flags ?? 0) & dnsPacket.TRUNCATED_RESPONSE).toBeTruthy();
    const wire = dnsPacket.encode(t);
    expect(wire.length).toBeLessThanOrEqual(512);
    // 12 + 32 (question) + 11 (OPT) + 42 per uncompressed A record.
    expect(t.answers).toHaveLength(10);
    expect(dnsPacket.decode(wire).additionals).toEqual([
      expect.objectContaining({ type: 'OPT' }),
    ]);
  });

  it('leaves a reply that fits as it is', () => {
    const p = manyAnswers(3);
    expect(truncate(p, 512)).toBe(p);
  });
});
