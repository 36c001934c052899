/*
 * Shared plumbing of the test bed's two DNS stand-ins, coreDns.ts (CoreDNS) and k8sNameserver.ts
 * (Tailscale's k8s-nameserver). Both real servers are Go programs built on github.com/miekg/dns,
 * so what they have in common is miekg/dns's behaviour, which this file follows:
 *  - github.com/miekg/dns v1.1.64 (CoreDNS v1.12.1's version; k8s-nameserver of tailscale.com
 *    v1.102.5 builds with v1.1.58, identical in everything used here):
 *    server.go `serveDNS` (a message whose header does not unpack is dropped; TCP messages carry a
 *    2-byte length and are served one after another per connection), acceptfunc.go
 *    `defaultMsgAcceptFunc` (responses ignored; opcodes other than QUERY and NOTIFY get NOTIMP;
 *    QDCOUNT != 1, ANCOUNT > 1, NSCOUNT > 1 or ARCOUNT > 2 get FORMERR; both header-only),
 *    msg.go `UnpackDomainName` (the escaped presentation form of names that both servers route
 *    and compare on), `Unpack`/`Pack` (a header-only message is valid; extended RCODE in the OPT
 *    record), defaults.go `SetReply`/`SetRcode`, `IsDomainName`, `IsFqdn`, `Fqdn`, labels.go
 *    `NextLabel`/`PrevLabel`/`CountLabel`/`Split`/`SplitDomainName`/`CompareDomainName`/
 *    `IsSubDomain`, msg_truncate.go `Truncate` and msg.go name compression (pointers for owner
 *    names and the names inside CNAME, NS, PTR, MX and SOA data, never inside SRV data);
 *  - Go's net/netip `ParseAddr`, which `net.ParseIP` is built on since Go 1.22 (no zones, no
 *    leading zeros in IPv4 octets), and time.ParseDuration, for values in configuration.
 * Not modelled: TSIG, DNS over TLS/HTTPS/QUIC. dns-packet represents a name as a dotted UTF-8
 * string, so a name with a label holding a dot or bytes that are not printable ASCII is routed
 * and compared on its exact escaped form, but echoed in a reply as dns-packet decodes it.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import * as dnsPacket from 'dns-packet';

export type Question = dnsPacket.Question;
export type RR = dnsPacket.Answer;
export type OptRR = dnsPacket.OptAnswer;

export const Rcode = {
  Success: 0,
  FormatError: 1,
  ServerFailure: 2,
  NameError: 3,
  NotImplemented: 4,
  Refused: 5,
  BadVers: 16,
} as const;

export const Opcode = { Query: 0, Notify: 4 } as const;

/** Type codes used by the stand-ins (RFC 1035, 3596, 2782, 6891). */
export const Type = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  HINFO: 13,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  DS: 43,
  IXFR: 251,
  AXFR: 252,
} as const;

export const ClassINET = 1;

/* ------------------------------------------------------------------------------------------ */
/* Listener                                                                                     */
/* ------------------------------------------------------------------------------------------ */

export type Transport = 'udp' | 'tcp';

export interface DnsClient {
  address: string;
  port: number;
  transport: Transport;
}

/** Answers one raw query; `undefined` sends nothing back (what miekg/dns does for garbage). */
export type DnsHandler = (
  query: Buffer,
  client: DnsClient,
) => Promise<Buffer | undefined>;

export interface DnsListener {
  /** `ip:port` (`[ip]:port` for IPv6), the form `forward` and `Resolver.setServers` accept. */
  readonly address: string;
  close(): Promise<void>;
}

export function hostPort(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * UDP and TCP on one address, as a miekg/dns `Server` pair does. TCP connections idle for
 * `tcpIdleTimeoutMs` are closed (miekg/dns: 8 s by default; CoreDNS sets 10 s).
 */
export async function listenDns(opts: {
  host: string;
  port: number;
  handler: DnsHandler;
  tcpIdleTimeoutMs: number;
  log: (m: string) => void;
}): Promise<DnsListener> {
  const { host, port, handler, log } = opts;
  let closed = false;
  const udp = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
  udp.on('message', (msg, rinfo) => {
    handler(msg, {
      address: rinfo.address,
      port: rinfo.port,
      transport: 'udp',
    }).then(
      reply => {
        if (!reply || closed) return;
        udp.send(reply, rinfo.port, rinfo.address, err => {
          if (err && !closed)
            log(`udp reply to ${rinfo.address}:${rinfo.port}: ${err.message}`);
        });
      },
      (err: unknown) =>
        log(`udp query from ${rinfo.address}:${rinfo.port}: ${String(err)}`),
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
    socket.setTimeout(opts.tcpIdleTimeoutMs, () => socket.destroy());
    const client: DnsClient = {
      address: socket.remoteAddress ?? '',
      port: socket.remotePort ?? 0,
      transport: 'tcp',
    };
    let pending = Buffer.alloc(0);
    let queue = Promise.resolve();
    socket.on('data', chunk => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2) {
        const length = pending.readUInt16BE(0);
        if (pending.length < 2 + length) break;
        const message = pending.subarray(2, 2 + length);
        pending = pending.subarray(2 + length);
        // One query at a time per connection, replies in order (server.go serveTCPConn).
        queue = queue.then(async () => {
          const reply = await handler(message, client).catch((err: unknown) => {
            log(
              `tcp query from ${client.address}:${client.port}: ${String(err)}`,
            );
            return undefined;
          });
          if (!reply || socket.destroyed) return;
          const prefix = Buffer.alloc(2);
          prefix.writeUInt16BE(reply.length);
          socket.write(Buffer.concat([prefix, reply]));
        });
      }
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
    closed = true;
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

/* ------------------------------------------------------------------------------------------ */
/* Header checks (miekg/dns acceptfunc.go, server.go)                                           */
/* ------------------------------------------------------------------------------------------ */

const QR = 0x8000;
const AA = 0x0400;
const TC = 0x0200;
const RD = 0x0100;
const RA = 0x0080;
const Z = 0x0040;
const AD = 0x0020;
const CD = 0x0010;

export interface Header {
  id: number;
  bits: number;
  qdcount: number;
  ancount: number;
  nscount: number;
  arcount: number;
}

/** miekg/dns unpackMsgHdr: `undefined` when the message is shorter than a header. */
export function readHeader(buf: Buffer): Header | undefined {
  if (buf.length < 12) return undefined;
  return {
    id: buf.readUInt16BE(0),
    bits: buf.readUInt16BE(2),
    qdcount: buf.readUInt16BE(4),
    ancount: buf.readUInt16BE(6),
    nscount: buf.readUInt16BE(8),
    arcount: buf.readUInt16BE(10),
  };
}

export type AcceptAction = 'accept' | 'reject' | 'ignore' | 'notimp';

/** miekg/dns acceptfunc.go defaultMsgAcceptFunc. */
export function acceptAction(h: Header): AcceptAction {
  if (h.bits & QR) return 'ignore';
  const opcode = (h.bits >> 11) & 0xf;
  if (opcode !== Opcode.Query && opcode !== Opcode.Notify) return 'notimp';
  if (h.qdcount !== 1) return 'reject';
  if (h.ancount > 1) return 'reject';
  if (h.nscount > 1) return 'reject';
  if (h.arcount > 2) return 'reject';
  return 'accept';
}

/**
 * The header-only reply miekg/dns server.go sends for a rejected message: the request's header
 * (`setHdr`) through `SetRcodeFormatError` (QR set, AA and Z cleared, opcode QUERY), or for
 * NOTIMP the original opcode; TC, RD, RA, AD and CD stay as the client sent them.
 */
export function rejectReply(h: Header, action: 'reject' | 'notimp'): Buffer {
  const opcode = action === 'notimp' ? (h.bits >> 11) & 0xf : Opcode.Query;
  const rcode = action === 'notimp' ? Rcode.NotImplemented : Rcode.FormatError;
  const bits =
    QR | (opcode << 11) | (h.bits & (TC | RD | RA | AD | CD)) | rcode;
  const out = Buffer.alloc(12);
  out.writeUInt16BE(h.id, 0);
  out.writeUInt16BE(bits, 2);
  return out;
}

/* ------------------------------------------------------------------------------------------ */
/* Names (miekg/dns msg.go, labels.go, defaults.go)                                              */
/* ------------------------------------------------------------------------------------------ */

const maxDomainNameWireOctets = 255;
const maxCompressionPointers = (maxDomainNameWireOctets + 1) / 2 - 2;

function isLabelSpecial(b: number): boolean {
  // types.go isDomainNameLabelSpecial: . space ' @ ; ( ) " backslash
  return [0x2e, 0x20, 0x27, 0x40, 0x3b, 0x28, 0x29, 0x22, 0x5c].includes(b);
}

/** msg.go UnpackDomainName: presentation form (escaped, fully qualified) and the offset after. */
export function unpackName(
  msg: Buffer,
  offset: number,
): { name: string; end: number } {
  let s = '';
  let off = offset;
  let end = -1;
  let budget = maxDomainNameWireOctets;
  let pointers = 0;
  for (;;) {
    if (off >= msg.length) throw new Error('dns: buffer size too small');
    const c = msg[off++];
    if ((c & 0xc0) === 0x00) {
      if (c === 0) break;
      if (off + c > msg.length) throw new Error('dns: buffer size too small');
      budget -= c + 1;
      if (budget <= 0)
        throw new Error('dns: domain name exceeded 255 wire-format octets');
      for (const b of msg.subarray(off, off + c)) {
        if (isLabelSpecial(b)) s += `\\${String.fromCharCode(b)}`;
        else if (b < 0x20 || b > 0x7e) s += `\\${String(b).padStart(3, '0')}`;
        else s += String.fromCharCode(b);
      }
      s += '.';
      off += c;
    } else if ((c & 0xc0) === 0xc0) {
      if (off >= msg.length) throw new Error('dns: buffer size too small');
      const c1 = msg[off++];
      if (pointers === 0) end = off;
      if (++pointers > maxCompressionPointers)
        throw new Error('dns: too many compression pointers');
      off = ((c ^ 0xc0) << 8) | c1;
    } else {
      throw new Error('dns: bad rdata');
    }
  }
  if (pointers === 0) end = off;
  return { name: s === '' ? '.' : s, end };
}

/** labels.go NextLabel. */
export function nextLabel(s: string, offset: number): [number, boolean] {
  if (s === '') return [0, true];
  let i = offset;
  for (; i < s.length - 1; i++) {
    if (s[i] !== '.') continue;
    let j = i - 1;
    while (j >= 0 && s[j] === '\\') j--;
    if ((j - i) % 2 === 0) continue;
    return [i + 1, false];
  }
  return [i + 1, true];
}

/** labels.go PrevLabel. */
export function prevLabel(s: string, n: number): [number, boolean] {
  if (s === '') return [0, true];
  if (n === 0) return [s.length, false];
  let l = s.length - 1;
  if (s[l] === '.') l--;
  for (; l >= 0 && n > 0; l--) {
    if (s[l] !== '.') continue;
    let j = l - 1;
    while (j >= 0 && s[j] === '\\') j--;
    if ((j - l) % 2 === 0) continue;
    n--;
    if (n === 0) return [l + 1, false];
  }
  return [0, n > 1];
}

/** labels.go CountLabel. */
export function countLabel(s: string): number {
  if (s === '.') return 0;
  let labels = 0;
  let off = 0;
  for (;;) {
    const [next, end] = nextLabel(s, off);
    off = next;
    labels++;
    if (end) return labels;
  }
}

/** labels.go Split: start offsets of the labels. */
export function splitLabels(s: string): number[] {
  if (s === '.') return [];
  const idx = [0];
  let off = 0;
  for (;;) {
    const [next, end] = nextLabel(s, off);
    off = next;
    if (end) return idx;
    idx.push(off);
  }
}

/** labels.go SplitDomainName. */
export function splitDomainName(s: string): string[] {
  if (s === '') return [];
  const idx = splitLabels(s);
  const fqdnEnd = isFqdn(s) ? s.length - 1 : s.length;
  if (idx.length === 0) return [];
  const labels: string[] = [];
  let begin = 0;
  for (const end of idx.slice(1)) {
    labels.push(s.slice(begin, end - 1));
    begin = end;
  }
  labels.push(s.slice(begin, fqdnEnd));
  return labels;
}

function equalFoldAscii(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  return (
    a.replace(/[A-Z]/g, c => c.toLowerCase()) ===
    b.replace(/[A-Z]/g, c => c.toLowerCase())
  );
}

/** labels.go CompareDomainName: how many labels, from the right, the names share. */
export function compareDomainName(s1: string, s2: string): number {
  if (s1 === '.' || s2 === '.') return 0;
  const l1 = splitLabels(s1);
  const l2 = splitLabels(s2);
  let j1 = l1.length - 1;
  let i1 = l1.length - 2;
  let j2 = l2.length - 1;
  let i2 = l2.length - 2;
  let n = 0;
  if (equalFoldAscii(s1.slice(l1[j1]), s2.slice(l2[j2]))) n++;
  else return n;
  while (i1 >= 0 && i2 >= 0) {
    if (equalFoldAscii(s1.slice(l1[i1], l1[j1]), s2.slice(l2[i2], l2[j2]))) n++;
    else break;
    j1--;
    i1--;
    j2--;
    i2--;
  }
  return n;
}

/** defaults.go IsSubDomain: child is parent or below it (case-insensitive). */
export function isSubDomain(parent: string, child: string): boolean {
  return compareDomainName(parent, child) === countLabel(parent);
}

/** defaults.go IsFqdn (an escaped final dot does not count). */
export function isFqdn(s: string): boolean {
  if (s === '' || s[s.length - 1] !== '.') return false;
  const t = s.slice(0, -1);
  if (t === '' || t[t.length - 1] !== '\\') return true;
  let i = t.length - 1;
  while (i >= 0 && t[i] === '\\') i--;
  return (t.length - 1 - i) % 2 === 0;
}

/** defaults.go Fqdn. */
export function fqdn(s: string): string {
  return isFqdn(s) ? s : `${s}.`;
}

/** defaults.go IsDomainName (the syntax check CoreDNS applies to zones in a Corefile). */
export function isDomainName(name: string): boolean {
  if (name.length === 0) return false;
  const s = fqdn(name);
  const lenmsg = 256;
  let off = 0;
  let begin = 0;
  let wasDot = false;
  for (let i = 0; i < s.length; i++) {
    switch (s[i]) {
      case '\\':
        if (off + 1 > lenmsg) return false;
        if (/^[0-9]{3}/.test(s.slice(i + 1))) {
          i += 3;
          begin += 3;
        } else {
          i++;
          begin++;
        }
        wasDot = false;
        break;
      case '.': {
        if (i === 0 && s.length > 1) return false;
        if (wasDot) return false;
        wasDot = true;
        const labelLen = i - begin;
        if (labelLen >= 64) return false;
        off += 1 + labelLen;
        if (off > lenmsg) return false;
        begin = i + 1;
        break;
      }
      default:
        wasDot = false;
    }
  }
  return true;
}

/** A presentation-form name as dns-packet wants it (unescaped, without the final dot). */
export function toPacketName(pres: string): string {
  if (pres === '.' || pres === '') return '.';
  const body = isFqdn(pres) ? pres.slice(0, -1) : pres;
  return body.replace(/\\([0-9]{3}|.)/g, (_m, e: string) =>
    e.length === 3 ? String.fromCharCode(Number(e)) : e,
  );
}

/** A dns-packet name in presentation form (ASCII names; see the file header for the limits). */
export function fromPacketName(name: string): string {
  if (name === '.' || name === '') return '.';
  return fqdn(name);
}

/* ------------------------------------------------------------------------------------------ */
/* Messages                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/** miekg/dns `Msg`, with the sections as dns-packet records. */
export interface Msg {
  id: number;
  response: boolean;
  opcode: number;
  authoritative: boolean;
  truncated: boolean;
  recursionDesired: boolean;
  recursionAvailable: boolean;
  zero: boolean;
  authenticatedData: boolean;
  checkingDisabled: boolean;
  /** Up to 12 bits; the upper 8 travel in the OPT record. */
  rcode: number;
  question: Question[];
  answer: RR[];
  ns: RR[];
  extra: RR[];
  /** Pack with name compression (msg.go Msg.Compress). */
  compress: boolean;
}

export function newMsg(): Msg {
  return {
    id: 0,
    response: false,
    opcode: Opcode.Query,
    authoritative: false,
    truncated: false,
    recursionDesired: false,
    recursionAvailable: false,
    zero: false,
    authenticatedData: false,
    checkingDisabled: false,
    rcode: Rcode.Success,
    question: [],
    answer: [],
    ns: [],
    extra: [],
    compress: false,
  };
}

export function copyMsg(m: Msg): Msg {
  return {
    ...m,
    question: m.question.map(q => ({ ...q })),
    answer: [...m.answer],
    ns: [...m.ns],
    extra: m.extra.map(rr =>
      rr.type === 'OPT' ? { ...rr, options: [...(rr.options ?? [])] } : rr,
    ),
  };
}

function headerBits(m: Msg): number {
  return (
    (m.response ? QR : 0) |
    ((m.opcode & 0xf) << 11) |
    (m.authoritative ? AA : 0) |
    (m.truncated ? TC : 0) |
    (m.recursionDesired ? RD : 0) |
    (m.recursionAvailable ? RA : 0) |
    (m.zero ? Z : 0) |
    (m.authenticatedData ? AD : 0) |
    (m.checkingDisabled ? CD : 0) |
    (m.rcode & 0xf)
  );
}

/** msg.go Unpack. Throws where miekg/dns returns an error. */
export function unpackMsg(buf: Buffer): Msg {
  const h = readHeader(buf);
  if (!h) throw new Error('dns: buffer size too small');
  const m = newMsg();
  m.id = h.id;
  m.response = (h.bits & QR) !== 0;
  m.opcode = (h.bits >> 11) & 0xf;
  m.authoritative = (h.bits & AA) !== 0;
  m.truncated = (h.bits & TC) !== 0;
  m.recursionDesired = (h.bits & RD) !== 0;
  m.recursionAvailable = (h.bits & RA) !== 0;
  m.zero = (h.bits & Z) !== 0;
  m.authenticatedData = (h.bits & AD) !== 0;
  m.checkingDisabled = (h.bits & CD) !== 0;
  m.rcode = h.bits & 0xf;
  // "If we are at the end of the message we should return *just* the header."
  if (buf.length === 12) return m;
  const p = dnsPacket.decode(buf);
  m.question = p.questions ?? [];
  m.answer = p.answers ?? [];
  m.ns = p.authorities ?? [];
  m.extra = p.additionals ?? [];
  const opt = isEdns0(m);
  if (opt) m.rcode |= (opt.extendedRcode ?? 0) << 4;
  return m;
}

/** The question's name in presentation form, read from the wire (exact escapes). */
export function questionName(buf: Buffer): string | undefined {
  try {
    return buf.length > 12 ? unpackName(buf, 12).name : undefined;
  } catch {
    return undefined;
  }
}

/** msg.go IsEdns0: the last OPT record of the additional section. */
export function isEdns0(m: Msg): OptRR | undefined {
  for (let i = m.extra.length - 1; i >= 0; i--) {
    const rr = m.extra[i];
    if (rr.type === 'OPT') return rr;
  }
  return undefined;
}

function popEdns0(m: Msg): OptRR | undefined {
  for (let i = m.extra.length - 1; i >= 0; i--) {
    const rr = m.extra[i];
    if (rr.type === 'OPT') {
      m.extra.splice(i, 1);
      return rr;
    }
  }
  return undefined;
}

/** defaults.go SetReply: `m` becomes a reply to `req` (ID, opcode, RD/CD for queries, question). */
export function setReply(m: Msg, req: Msg): Msg {
  m.id = req.id;
  m.response = true;
  m.opcode = req.opcode;
  if (m.opcode === Opcode.Query) {
    m.recursionDesired = req.recursionDesired;
    m.checkingDisabled = req.checkingDisabled;
  }
  m.rcode = Rcode.Success;
  if (req.question.length > 0) m.question = [{ ...req.question[0] }];
  return m;
}

/** defaults.go SetRcode. */
export function setRcode(m: Msg, req: Msg, rcode: number): Msg {
  setReply(m, req);
  m.rcode = rcode;
  return m;
}

function toPacket(m: Msg, extra: RR[]): dnsPacket.Packet {
  return {
    id: m.id,
    type: m.response ? 'response' : 'query',
    flags: headerBits(m) & 0x7fff,
    questions: m.question,
    answers: m.answer,
    authorities: m.ns,
    additionals: extra,
  };
}

function withExtendedRcode(m: Msg): RR[] {
  // msg.go Pack: the OPT record, if any, always carries the upper bits of the RCODE.
  const opt = isEdns0(m);
  if (!opt) {
    if (m.rcode > 0xf)
      throw new Error('dns: extended rcode without OPT record');
    return m.extra;
  }
  return m.extra.map(rr =>
    rr === opt ? { ...opt, extendedRcode: (m.rcode >> 4) & 0xff } : rr,
  );
}

/** msg.go Pack (compressed when `m.compress`). */
export function packMsg(m: Msg): Buffer {
  const extra = withExtendedRcode(m);
  if (!m.compress) return dnsPacket.encode(toPacket(m, extra));
  const w = new CompressingWriter();
  w.header(m, m.question.length, m.answer.length, m.ns.length, extra.length);
  for (const q of m.question) w.question(q);
  for (const rr of [...m.answer, ...m.ns, ...extra]) w.rr(rr);
  return w.bytes();
}

/** A message as a dns-packet `Packet` (for code that speaks dns-packet, e.g. an upstream). */
export function msgToPacket(m: Msg): dnsPacket.Packet {
  return toPacket(m, withExtendedRcode(m));
}

/** A dns-packet `Packet` as a message (through the wire format, as a real exchange would). */
export function packetToMsg(p: dnsPacket.Packet): Msg {
  return unpackMsg(dnsPacket.encode(p));
}

const typeCodes = new Map<string, number>();

/** The numeric type of a dns-packet type name (including dns-packet's `UNKNOWN_<n>`). */
export function typeCode(type: string): number {
  const cached = typeCodes.get(type);
  if (cached !== undefined) return cached;
  const buf = dnsPacket.encode({
    questions: [{ name: '.', type: type as dnsPacket.RecordType }],
  });
  const code = buf.readUInt16BE(13);
  typeCodes.set(type, code);
  return code;
}

/** The numeric class of a dns-packet class name (IN when absent). */
export function classCode(klass: string | undefined): number {
  if (klass === undefined) return ClassINET;
  const buf = dnsPacket.encode({
    questions: [
      { name: '.', type: 'A', class: klass as dnsPacket.RecordClass },
    ],
  });
  return buf.readUInt16BE(15);
}

/** Length of `m` packed as it would be (msg.go Len). */
export function msgLen(m: Msg): number {
  return packMsg(m).length;
}

/** The fixed part (type, class, TTL) and data of one record, as dns-packet encodes them. */
function encodeRecordTail(rr: RR): Buffer {
  // An owner name of "." encodes as one zero byte; what follows is type, class, TTL, RDLENGTH, RDATA.
  const encoded = dnsPacket.encode({ answers: [{ ...rr, name: '.' }] });
  return encoded.subarray(12 + 1);
}

/** msg.go packing with a compression map (compressionMap, packDomainName). */
class CompressingWriter {
  private buf = Buffer.alloc(512);
  private off = 0;
  private readonly names = new Map<string, number>();

  private ensure(n: number) {
    if (this.off + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.off + n));
    this.buf.copy(next, 0, 0, this.off);
    this.buf = next;
  }

  private u16(v: number) {
    this.ensure(2);
    this.buf.writeUInt16BE(v & 0xffff, this.off);
    this.off += 2;
  }

  private u32(v: number) {
    this.ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.off);
    this.off += 4;
  }

  private raw(b: Buffer) {
    this.ensure(b.length);
    b.copy(this.buf, this.off);
    this.off += b.length;
  }

  get length(): number {
    return this.off;
  }

  header(m: Msg, qd: number, an: number, ns: number, ar: number) {
    this.u16(m.id);
    this.u16(headerBits(m));
    this.u16(qd);
    this.u16(an);
    this.u16(ns);
    this.u16(ar);
  }

  /** Every suffix is remembered for later pointers; a pointer is used only where `compress`. */
  name(name: string, compress: boolean) {
    const trimmed = name.replace(/^\.|\.$/g, '');
    const labels = trimmed === '' ? [] : trimmed.split('.');
    for (let i = 0; i < labels.length; i++) {
      const suffix = labels.slice(i).join('.');
      const at = this.names.get(suffix);
      if (at !== undefined) {
        if (compress) {
          this.u16(0xc000 | at);
          return;
        }
      } else if (this.off < 0x3fff) {
        this.names.set(suffix, this.off);
      }
      const bytes = Buffer.from(labels[i], 'utf8');
      this.ensure(1 + bytes.length);
      this.buf[this.off++] = bytes.length;
      this.raw(bytes);
    }
    this.ensure(1);
    this.buf[this.off++] = 0;
  }

  question(q: Question) {
    this.name(q.name, true);
    // The fixed part of a question is its type and class, as dns-packet encodes them.
    const encoded = dnsPacket.encode({ questions: [{ ...q, name: '.' }] });
    this.raw(encoded.subarray(12 + 1));
  }

  rr(rr: RR) {
    this.name(rr.name, true);
    const tail = encodeRecordTail(rr);
    const fixed = tail.subarray(0, 8); // type, class, TTL
    switch (rr.type) {
      case 'CNAME':
      case 'NS':
      case 'PTR':
        this.raw(fixed);
        this.rdata(() => this.name(rr.data, true));
        return;
      case 'MX':
        this.raw(fixed);
        this.rdata(() => {
          this.u16(rr.data.preference ?? 0);
          this.name(rr.data.exchange, true);
        });
        return;
      case 'SOA':
        this.raw(fixed);
        this.rdata(() => {
          this.name(rr.data.mname, true);
          this.name(rr.data.rname, true);
          this.u32(rr.data.serial ?? 0);
          this.u32(rr.data.refresh ?? 0);
          this.u32(rr.data.retry ?? 0);
          this.u32(rr.data.expire ?? 0);
          this.u32(rr.data.minimum ?? 0);
        });
        return;
      case 'SRV':
        this.raw(fixed);
        this.rdata(() => {
          this.u16(rr.data.priority ?? 0);
          this.u16(rr.data.weight ?? 0);
          this.u16(rr.data.port);
          this.name(rr.data.target, false);
        });
        return;
      default:
        this.raw(tail);
    }
  }

  private rdata(write: () => void) {
    const at = this.off;
    this.u16(0);
    write();
    this.buf.writeUInt16BE(this.off - at - 2, at);
  }

  bytes(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.off));
  }
}

/**
 * msg_truncate.go Msg.Truncate: make `m` fit `size` bytes (at least 512): uncompressed if it fits
 * so, else compressed, keeping as many records as fit (answer, then authority, then additional
 * section) and setting TC when any was left out. The OPT record is always kept.
 */
export function truncateMsg(m: Msg, size: number): void {
  let budget = Math.max(size, 512);
  const uncompressed = packMsg({ ...m, compress: false }).length;
  if (uncompressed <= budget) {
    m.compress = false;
    return;
  }
  m.compress = true;
  const opt = popEdns0(m);
  if (opt) budget -= dnsPacket.encode({ additionals: [opt] }).length - 12;
  const w = new CompressingWriter();
  w.header(m, 0, 0, 0, 0);
  for (const q of m.question) w.question(q);
  let l = w.length;
  const fit = (rrs: RR[]): number => {
    for (let i = 0; i < rrs.length; i++) {
      w.rr(rrs[i]);
      l = w.length;
      if (l > budget) {
        l = budget;
        return i;
      }
      if (l === budget) return i + 1;
    }
    return rrs.length;
  };
  const numAnswer = l < budget ? fit(m.answer) : 0;
  const numNs = l < budget ? fit(m.ns) : 0;
  const numExtra = l < budget ? fit(m.extra) : 0;
  m.truncated =
    m.truncated ||
    m.answer.length > numAnswer ||
    m.ns.length > numNs ||
    m.extra.length > numExtra;
  m.answer = m.answer.slice(0, numAnswer);
  m.ns = m.ns.slice(0, numNs);
  m.extra = m.extra.slice(0, numExtra);
  if (opt) m.extra.push(opt);
}

/* ------------------------------------------------------------------------------------------ */
/* Go value parsing                                                                             */
/* ------------------------------------------------------------------------------------------ */

function parseIPv4Fields(s: string, out: Uint8Array, at: number): boolean {
  let val = 0;
  let pos = 0;
  let digLen = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) {
      if (digLen === 1 && val === 0) return false; // leading zero
      val = val * 10 + (c - 0x30);
      digLen++;
      if (val > 255) return false;
    } else if (s[i] === '.') {
      if (i === 0 || i === s.length - 1 || s[i - 1] === '.') return false;
      if (pos === 3) return false;
      out[at + pos++] = val;
      val = 0;
      digLen = 0;
    } else {
      return false;
    }
  }
  if (pos < 3) return false;
  out[at + 3] = val;
  return true;
}

function parseIPv6(input: string): Uint8Array | undefined {
  let s = input;
  const ip = new Uint8Array(16);
  let ellipsis = -1;
  if (s.length >= 2 && s[0] === ':' && s[1] === ':') {
    ellipsis = 0;
    s = s.slice(2);
    if (s.length === 0) return ip;
  }
  let i = 0;
  while (i < 16) {
    let off = 0;
    let acc = 0;
    for (; off < s.length; off++) {
      const d = '0123456789abcdef'.indexOf(s[off].toLowerCase());
      if (d < 0) break;
      acc = acc * 16 + d;
      if (off > 3) return undefined;
    }
    if (off === 0) return undefined;
    if (off < s.length && s[off] === '.') {
      if (ellipsis < 0 && i !== 12) return undefined;
      if (i + 4 > 16) return undefined;
      if (!parseIPv4Fields(s, ip, i)) return undefined;
      s = '';
      i += 4;
      break;
    }
    ip[i] = acc >> 8;
    ip[i + 1] = acc & 0xff;
    i += 2;
    s = s.slice(off);
    if (s.length === 0) break;
    if (s[0] !== ':' || s.length === 1) return undefined;
    s = s.slice(1);
    if (s[0] === ':') {
      if (ellipsis >= 0) return undefined;
      ellipsis = i;
      s = s.slice(1);
      if (s.length === 0) break;
    }
  }
  if (s.length !== 0) return undefined;
  if (i < 16) {
    if (ellipsis < 0) return undefined;
    const n = 16 - i;
    for (let j = i - 1; j >= ellipsis; j--) ip[j + n] = ip[j];
    ip.fill(0, ellipsis, ellipsis + n);
  } else if (ellipsis >= 0) {
    return undefined;
  }
  return ip;
}

/**
 * Go's net.ParseIP (netip.ParseAddr, zones refused): 16 bytes, IPv4 as ::ffff:a.b.c.d;
 * `undefined` where Go returns nil.
 */
export function parseGoIP(s: string): Uint8Array | undefined {
  for (const c of s) {
    if (c === '.') {
      const ip = new Uint8Array(16);
      ip[10] = 0xff;
      ip[11] = 0xff;
      return parseIPv4Fields(s, ip, 12) ? ip : undefined;
    }
    if (c === ':') {
      if (s.includes('%')) return undefined;
      return parseIPv6(s);
    }
    if (c === '%') return undefined;
  }
  return undefined;
}

/** Go's IP.To4: the 4 bytes of an IPv4 (or IPv4-mapped) address. */
export function to4(ip: Uint8Array): Uint8Array | undefined {
  for (let i = 0; i < 10; i++) if (ip[i] !== 0) return undefined;
  if (ip[10] !== 0xff || ip[11] !== 0xff) return undefined;
  return ip.subarray(12, 16);
}

export function formatIPv4(b: Uint8Array): string {
  return Array.from(b).join('.');
}

export function formatIPv6(b: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2)
    groups.push(((b[i] << 8) | b[i + 1]).toString(16));
  return groups.join(':');
}

const durationUnits: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  μs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** Go's time.ParseDuration, in nanoseconds; throws Go's message on error. */
export function parseGoDuration(input: string): number {
  const err = () => new Error(`time: invalid duration "${input}"`);
  let s = input;
  let neg = false;
  if (s !== '' && (s[0] === '-' || s[0] === '+')) {
    neg = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') throw err();
  let total = 0;
  while (s !== '') {
    const m = /^([0-9]*)(\.[0-9]*)?([^0-9.]*)/.exec(s);
    if (!m || (m[1] === '' && (m[2] === undefined || m[2] === '.')))
      throw err();
    const unit = m[3];
    if (unit === '')
      throw new Error(`time: missing unit in duration "${input}"`);
    if (!(unit in durationUnits)) {
      throw new Error(`time: unknown unit "${unit}" in duration "${input}"`);
    }
    total += Number(`${m[1] || '0'}${m[2] ?? ''}`) * durationUnits[unit];
    s = s.slice(m[0].length);
  }
  return neg ? -total : total;
}

/** Go's strconv.Atoi (base 10, optional sign, 64-bit range). */
export function goAtoi(s: string): number | undefined {
  if (!/^[+-]?[0-9]+$/.test(s)) return undefined;
  const n = Number(s);
  return Math.abs(n) <= 9223372036854775807 ? n : undefined;
}
