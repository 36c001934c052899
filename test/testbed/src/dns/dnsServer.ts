/*
 * Shared plumbing of the test bed's two DNS stand-ins, coreDns.ts (CoreDNS) and k8sNameserver.ts
 * (Tailscale's cmd/k8s-nameserver). Both real servers are Go programs serving through
 * github.com/miekg/dns, so what they share here is that library's behaviour on the wire.
 *
 * Follows github.com/miekg/dns v1.1.64 (CoreDNS v1.12.1's; k8s-nameserver builds with v1.1.58,
 * the same in all that is used here):
 *  - server.go `serveUDP`, `serveTCP`, `serveDNS`: UDP and TCP on one address; TCP messages carry
 *    a 2-byte length and are answered in order per connection; idle connections are closed; a
 *    message shorter than a header is dropped;
 *  - acceptfunc.go `defaultMsgAcceptFunc`: responses are ignored, an opcode other than QUERY gets
 *    NOTIMP, a message without exactly one question (or that does not unpack) gets FORMERR, both
 *    as a bare header;
 *  - defaults.go `SetRcode` (a reply keeps the query's ID, opcode, RD, CD and question);
 *  - msg_truncate.go `Msg.Truncate` as CoreDNS's request/request.go `Scrub` applies it: a UDP
 *    reply over 512 bytes (or the client's EDNS buffer size) keeps the records that fit, in
 *    order, plus the OPT record, and gets TC;
 *  - client.go `Exchange`, for CoreDNS's forward plugin: one query over UDP or TCP, the reply
 *    with the query's ID.
 * Messages are dns-packet's, names are compared lower-cased without the final dot.
 *
 * Not modelled: name compression (dns-packet writes names in full, so a truncated reply keeps
 * fewer records than miekg/dns's would), NOTIFY and the other opcodes, the limits on the other
 * section counts of a query, the escaped presentation form of unusual labels, TSIG, DNS over
 * TLS/HTTPS/QUIC.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import * as dnsPacket from 'dns-packet';

export type Packet = dnsPacket.Packet;
/** A query as it came off the wire: exactly one question (checked before handlers see it). */
export type Query = dnsPacket.DecodedPacket & {
  questions: dnsPacket.Question[];
};
export type Transport = 'udp' | 'tcp';
export type DnsHandler = (
  query: Query,
  transport: Transport,
) => Promise<Packet | undefined>;

export const Rcode = {
  NoError: 0,
  FormErr: 1,
  ServFail: 2,
  NXDomain: 3,
  NotImp: 4,
  Refused: 5,
} as const;

const QR = 0x8000;
const OPCODE = 0x7800;
export const AA = dnsPacket.AUTHORITATIVE_ANSWER;
const TC = dnsPacket.TRUNCATED_RESPONSE;
const RD = dnsPacket.RECURSION_DESIRED;
const CD = dnsPacket.CHECKING_DISABLED;

/** A name as compared here: lower case, no final dot, "" for the root. */
export const canonical = (name: string) =>
  name.toLowerCase().replace(/\.$/, '');

/** defaults.go IsSubDomain, on canonical names. */
export const isSubDomain = (parent: string, child: string) =>
  parent === '' || child === parent || child.endsWith(`.${parent}`);

export const hostPort = (host: string, port: number) =>
  net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;

/** defaults.go SetRcode: the reply to `q` with `rcode` (and `flags`, e.g. AA), no records yet. */
export function reply(q: Query, rcode: number, flags = 0): Packet {
  return {
    id: q.id,
    type: 'response',
    flags: ((q.flags ?? 0) & (OPCODE | RD | CD)) | flags | rcode,
    questions: q.questions,
    answers: [],
    authorities: [],
    additionals: [],
  };
}

export function optOf(p: Packet): dnsPacket.OptAnswer | undefined {
  return p.additionals?.find(
    (rr): rr is dnsPacket.OptAnswer => rr.type === 'OPT',
  );
}

/** The client's UDP buffer (edns.go / request.go Size): its EDNS size, at least 512. */
export const udpSize = (q: Query) =>
  Math.max(512, optOf(q)?.udpPayloadSize ?? 0);

/** msg_truncate.go Truncate, without compression: what fits in `size`, the OPT kept, TC set. */
export function truncate(p: Packet, size: number): Packet {
  if (dnsPacket.encodingLength(p) <= size) return p;
  const opt = optOf(p);
  const out = {
    ...p,
    flags: (p.flags ?? 0) | TC,
    answers: [] as dnsPacket.Answer[],
    authorities: [] as dnsPacket.Answer[],
    additionals: (opt ? [opt] : []) as dnsPacket.Answer[],
  };
  for (const section of ['answers', 'authorities', 'additionals'] as const) {
    for (const rr of p[section] ?? []) {
      if (rr === opt) continue;
      out[section].push(rr);
      if (dnsPacket.encodingLength(out) > size) {
        out[section].pop();
        return out;
      }
    }
  }
  return out;
}

/** server.go serveDNS with acceptfunc.go: one message off the wire to its reply, if any. */
async function serveMessage(
  msg: Buffer,
  transport: Transport,
  handler: DnsHandler,
): Promise<Buffer | undefined> {
  if (msg.length < 12) return undefined;
  const bits = msg.readUInt16BE(2);
  if (bits & QR) return undefined;
  const bare = (rcode: number) => {
    const b = Buffer.alloc(12);
    b.writeUInt16BE(msg.readUInt16BE(0), 0);
    b.writeUInt16BE(QR | (bits & (OPCODE | RD | CD)) | rcode, 2);
    return b;
  };
  if (bits & OPCODE) return bare(Rcode.NotImp);
  let query: dnsPacket.DecodedPacket;
  try {
    query = dnsPacket.decode(msg);
  } catch {
    return bare(Rcode.FormErr);
  }
  const { questions } = query;
  if (questions?.length !== 1) return bare(Rcode.FormErr);
  const answer = await handler({ ...query, questions }, transport);
  return answer && dnsPacket.encode(answer);
}

export interface DnsListener {
  /** `ip:port` (`[ip]:port` for IPv6), as `Resolver.setServers` takes it. */
  readonly address: string;
  close(): Promise<void>;
}

const lengthPrefixed = (m: Buffer) => {
  const prefix = Buffer.alloc(2);
  prefix.writeUInt16BE(m.length);
  return Buffer.concat([prefix, m]);
};

/** Splits a TCP stream into its 2-byte-length-prefixed messages. */
function tcpMessages(socket: net.Socket, onMessage: (m: Buffer) => void) {
  let pending = Buffer.alloc(0);
  socket.on('data', chunk => {
    pending = Buffer.concat([pending, chunk]);
    while (
      pending.length >= 2 &&
      pending.length >= 2 + pending.readUInt16BE(0)
    ) {
      const length = pending.readUInt16BE(0);
      onMessage(pending.subarray(2, 2 + length));
      pending = pending.subarray(2 + length);
    }
  });
}

/** UDP and TCP on `host:port`, as a miekg/dns Server pair; TCP idle 10 s (CoreDNS's timeout). */
export async function listenDns(opts: {
  host: string;
  port: number;
  handler: DnsHandler;
  log: (m: string) => void;
}): Promise<DnsListener> {
  const { host, port, handler, log } = opts;
  let closed = false;
  const udp = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
  udp.on('message', (msg, from) => {
    serveMessage(msg, 'udp', handler).then(
      out => {
        if (out && !closed) udp.send(out, from.port, from.address);
      },
      (err: unknown) => log(`udp query from ${from.address}: ${String(err)}`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind({ port, address: host, exclusive: true }, () => {
      udp.off('error', reject);
      resolve();
    });
  });
  udp.on('error', err => {
    if (!closed) log(`udp socket: ${err.message}`);
  });

  const connections = new Set<net.Socket>();
  const tcp = net.createServer(socket => {
    connections.add(socket);
    socket.on('close', () => connections.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.setTimeout(10_000, () => socket.destroy());
    let queue = Promise.resolve();
    tcpMessages(socket, m => {
      queue = queue.then(async () => {
        const out = await serveMessage(m, 'tcp', handler).catch(
          (err: unknown) => log(`tcp query: ${String(err)}`),
        );
        if (out && !socket.destroyed) socket.write(lengthPrefixed(out));
      });
    });
  });
  try {
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen({ port, host, exclusive: true }, () => {
        tcp.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    udp.close();
    throw err;
  }
  tcp.on('error', err => log(`tcp listener: ${err.message}`));

  return {
    address: hostPort(host, port),
    async close() {
      if (closed) return;
      closed = true;
      for (const s of connections) s.destroy();
      await Promise.all([
        new Promise<void>(resolve => udp.close(() => resolve())),
        new Promise<void>(resolve => tcp.close(() => resolve())),
      ]);
    },
  };
}

/** client.go Exchange: `query` to `host:port`, the reply with its ID, or an error. */
export function exchange(
  host: string,
  port: number,
  query: Packet,
  transport: Transport,
  timeoutMs: number,
): Promise<dnsPacket.DecodedPacket> {
  const addr = hostPort(host, port);
  const wire = dnsPacket.encode(query);
  return new Promise((resolve, reject) => {
    let cleanup: () => void = () => undefined;
    let done = false;
    const finish = (err: Error | undefined, m?: dnsPacket.DecodedPacket) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      cleanup();
      if (m) resolve(m);
      else reject(err ?? new Error(`${transport} ${addr}: no reply`));
    };
    const timer = setTimeout(
      () => finish(new Error(`read ${transport} ${addr}: i/o timeout`)),
      timeoutMs,
    );
    const onError = (e: Error) =>
      finish(new Error(`${transport} ${addr}: ${e.message}`));
    const onMessage = (m: Buffer) => {
      if (m.length < 12 || m.readUInt16BE(0) !== query.id) return;
      try {
        finish(undefined, dnsPacket.decode(m));
      } catch (e) {
        onError(e as Error);
      }
    };
    if (transport === 'udp') {
      const s = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
      cleanup = () => s.close();
      s.on('error', onError);
      s.on('message', onMessage);
      // The timeout may have closed the socket before connect calls back; send on a socket that is
      // not connected throws (ERR_SOCKET_BAD_PORT) outside any handler and would take the whole
      // test bed down (it did once, on a loaded machine).
      // dgram calls back with the error when the connect fails (no route to the address).
      s.connect(port, host, (err?: Error) => {
        if (done) return;
        if (err) return onError(err);
        try {
          s.send(wire, err => err && onError(err));
        } catch (e) {
          onError(e as Error);
        }
      });
    } else {
      const s = net.connect({ host, port }, () =>
        s.write(lengthPrefixed(wire)),
      );
      cleanup = () => s.destroy();
      s.on('error', onError);
      s.on('close', () => finish(new Error(`read tcp ${addr}: EOF`)));
      tcpMessages(s, onMessage);
    }
  });
}
