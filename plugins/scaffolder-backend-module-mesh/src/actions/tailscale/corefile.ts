import { InputError } from '@backstage/errors';
import { coreDnsStanzaMarkers } from '@tailmesh/plugin-mesh-common';

/** CoreDNS's own indentation in the Corefiles kubeadm and most distributions write. */
const INDENT = '    ';

/**
 * The server block that sends the tailnet's names to the operator's nameserver, between markers.
 *
 * @public
 */
export function tailnetStanza(tailnet: string, nameserverIp: string): string {
  const { begin, end } = coreDnsStanzaMarkers(tailnet);
  return [
    begin,
    `${tailnet}:53 {`,
    `${INDENT}errors`,
    `${INDENT}cache 30`,
    `${INDENT}forward . ${nameserverIp}`,
    '}',
    end,
  ].join('\n');
}

/** Offset just past the `}` closing the block whose `{` is at `open`; `#` comments are skipped. */
function blockEnd(corefile: string, open: number): number {
  let depth = 0;
  for (let i = open; i < corefile.length; i++) {
    const c = corefile[i];
    if (c === '#') {
      const eol = corefile.indexOf('\n', i);
      if (eol < 0) break;
      i = eol;
    } else if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return i + 1;
  }
  throw new InputError(
    'The Corefile has an unterminated server block; nothing was written',
  );
}

const zoneKeys = (tailnet: string) => {
  const names = [tailnet, `${tailnet}.`];
  return new Set(
    names.flatMap(n => [n, `${n}:53`, `dns://${n}`, `dns://${n}:53`]),
  );
};

/**
 * A server block for the tailnet written without Tailmesh's markers (by hand, from the recipe):
 * CoreDNS refuses a zone defined twice, so it has to be replaced rather than added to.
 */
function unmarkedBlock(
  corefile: string,
  tailnet: string,
): { start: number; end: number } | undefined {
  const keys = zoneKeys(tailnet.toLowerCase());
  const header = /^[ \t]*([^#{}\n]+?)[ \t]*\{/gm;
  let walkedTo = 0;
  for (let m = header.exec(corefile); m; m = header.exec(corefile)) {
    if (m.index < walkedTo) continue; // inside a block already walked past
    const open = m.index + m[0].length - 1;
    const end = blockEnd(corefile, open);
    walkedTo = end;
    const tokens = m[1].trim().toLowerCase().split(/\s+/);
    if (!tokens.some(t => keys.has(t))) continue;
    if (tokens.length > 1) {
      throw new InputError(
        `The Corefile serves ${tailnet} in a server block together with ${tokens.filter(t => !keys.has(t)).join(' ')}; move it to its own block or remove it, then run again`,
      );
    }
    return { start: m.index, end };
  }
  return undefined;
}

/** @public */
export interface CorefileEdit {
  corefile: string;
  outcome: 'added' | 'updated' | 'unchanged';
}

/**
 * Puts exactly one server block for `tailnet` into the Corefile, forwarding to `nameserverIp`:
 * replaces Tailmesh's marked block (or a hand-written block for the same zone) in place, or adds
 * one at the end. Every other line stays as it was.
 *
 * @public
 */
export function upsertTailnetStanza(
  corefile: string,
  tailnet: string,
  nameserverIp: string,
): CorefileEdit {
  const { begin, end } = coreDnsStanzaMarkers(tailnet);
  const stanza = tailnetStanza(tailnet, nameserverIp);
  const lines = corefile.split('\n');
  const begins = lines.flatMap((l, i) => (l.trim() === begin ? [i] : []));
  const ends = lines.flatMap((l, i) => (l.trim() === end ? [i] : []));

  if (
    begins.length > 1 ||
    ends.length > 1 ||
    begins.length !== ends.length ||
    (begins.length && ends[0] < begins[0])
  ) {
    throw new InputError(
      `The Corefile's "${begin}" / "${end}" markers are duplicated or unbalanced; fix them by hand, then run again`,
    );
  }
  if (begins.length === 1) {
    const current = lines.slice(begins[0], ends[0] + 1).join('\n');
    if (current === stanza) return { corefile, outcome: 'unchanged' };
    const next = [
      ...lines.slice(0, begins[0]),
      stanza,
      ...lines.slice(ends[0] + 1),
    ].join('\n');
    return { corefile: next, outcome: 'updated' };
  }

  const handWritten = unmarkedBlock(corefile, tailnet);
  if (handWritten) {
    const next =
      corefile.slice(0, handWritten.start) +
      stanza +
      corefile.slice(handWritten.end);
    return { corefile: next, outcome: 'updated' };
  }

  const base =
    corefile === '' || corefile.endsWith('\n') ? corefile : `${corefile}\n`;
  return { corefile: `${base}${stanza}\n`, outcome: 'added' };
}
