import http from 'node:http';
import net from 'node:net';

/** The parts of a Kubernetes object the fake apiserver looks at. */
export interface FakeObject {
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    resourceVersion?: string;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

interface OpenWatch {
  path: string;
  query: URLSearchParams;
  metadataOnly: boolean;
  res: http.ServerResponse;
}

const keyOf = (o: FakeObject) =>
  `${o.metadata.namespace ?? ''}/${o.metadata.name}`;

/** The `metadata.name=` field selector and `key=value` label selectors the cache uses. */
function selects(query: URLSearchParams, o: FakeObject): boolean {
  const field = query.get('fieldSelector');
  if (field?.startsWith('metadata.name=')) {
    if (o.metadata.name !== field.slice('metadata.name='.length)) return false;
  }
  const label = query.get('labelSelector');
  if (label) {
    const [k, v] = label.split('=');
    if (o.metadata.labels?.[k] !== v) return false;
  }
  return true;
}

function asServed(o: FakeObject, metadataOnly: boolean): FakeObject {
  return metadataOnly
    ? {
        kind: 'PartialObjectMetadata',
        apiVersion: 'meta.k8s.io/v1',
        metadata: o.metadata,
      }
    : o;
}

/**
 * An in-process apiserver for the watch cache's tests, over a real socket: lists what the test
 * put in each collection (honouring the cache's selectors and metadata-only negotiation), keeps
 * watches open and streams every change the test makes to them, as a real apiserver does.
 */
export class FakeApiServer {
  private readonly collections = new Map<string, Map<string, FakeObject>>();
  private readonly watches = new Set<OpenWatch>();
  /** Every change, so a watch from an older resourceVersion gets what it missed. */
  private readonly log: Array<{
    path: string;
    type: string;
    object: FakeObject;
  }> = [];
  private readonly sockets = new Set<net.Socket>();
  private version = 1;
  /** Requests seen, by collection path. */
  readonly requests: string[] = [];

  static async start(): Promise<FakeApiServer> {
    const fake = new FakeApiServer();
    await new Promise<void>(resolve =>
      fake.server.listen(0, '127.0.0.1', () => resolve()),
    );
    return fake;
  }

  private readonly server = http.createServer((req, res) =>
    this.handle(req, res),
  );

  private constructor() {
    this.server.on('connection', s => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  get url(): string {
    const { port } = this.server.address() as net.AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  /** Creates or replaces an object of the collection at `path`, and tells the watches. */
  apply(path: string, object: FakeObject): void {
    const items = this.collections.get(path) ?? new Map<string, FakeObject>();
    this.collections.set(path, items);
    const type = items.has(keyOf(object)) ? 'MODIFIED' : 'ADDED';
    const stored: FakeObject = {
      ...object,
      metadata: { ...object.metadata, resourceVersion: String(++this.version) },
    };
    items.set(keyOf(stored), stored);
    this.log.push({ path, type, object: stored });
    for (const w of this.watches) {
      if (w.path === path) this.write(w, type, stored);
    }
  }

  async close(): Promise<void> {
    for (const w of this.watches) w.res.destroy();
    for (const s of this.sockets) s.destroy();
    await new Promise(resolve => this.server.close(resolve));
  }

  private write(w: OpenWatch, type: string, object: FakeObject): void {
    if (!selects(w.query, object)) return;
    w.res.write(
      `${JSON.stringify({ type, object: asServed(object, w.metadataOnly) })}\n`,
    );
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    this.requests.push(url.pathname);
    const metadataOnly = (req.headers.accept ?? '').includes(
      'as=PartialObjectMetadata',
    );
    res.writeHead(200, { 'content-type': 'application/json' });
    if (url.searchParams.get('watch') === 'true') {
      const watch = {
        path: url.pathname,
        query: url.searchParams,
        metadataOnly,
        res,
      };
      this.watches.add(watch);
      res.on('close', () => this.watches.delete(watch));
      res.flushHeaders();
      const from = Number(url.searchParams.get('resourceVersion') ?? 0);
      for (const e of this.log) {
        if (
          e.path === url.pathname &&
          Number(e.object.metadata.resourceVersion) > from
        )
          this.write(watch, e.type, e.object);
      }
      return;
    }
    const items = [...(this.collections.get(url.pathname)?.values() ?? [])]
      .filter(o => selects(url.searchParams, o))
      .map(o => asServed(o, metadataOnly));
    res.end(
      JSON.stringify({
        kind: metadataOnly ? 'PartialObjectMetadataList' : 'List',
        metadata: { resourceVersion: String(this.version) },
        items,
      }),
    );
  }
}
