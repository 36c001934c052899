import http from 'node:http';
import { AddressInfo } from 'node:net';
import { ConfigReader } from '@backstage/config';
import {
  KubernetesObject,
  V1NetworkPolicy,
  V1Service,
} from '@kubernetes/client-node';
import { ClusterAccess } from '@tailmesh/plugin-mesh-node';
import { MeshActionDeps } from '../../../service/MeshActionDeps';

/** One request the fake API server answered, as the client sent it. */
export interface FakeApiRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  body?: unknown;
}

const OBJECT =
  /^\/(?:api\/v1|apis\/networking\.k8s\.io\/v1)\/namespaces\/(?<namespace>[^/]+)\/(?<resource>services|networkpolicies)\/(?<name>[^/]+)$/;

/**
 * A Kubernetes API server of one cluster for the egress actions, over real HTTP so the real
 * client (discovery, server-side apply, delete) talks to it: namespaces, and Services and
 * NetworkPolicies that server-side apply stores (a dry run stores nothing) and delete removes at
 * once, as if the operator's finalizer were already done. Every request is kept for the test to check.
 */
export class FakeServiceApi {
  readonly requests: FakeApiRequest[] = [];
  /** Services by `namespace/name`. */
  readonly services = new Map<string, V1Service>();
  /** NetworkPolicies by `namespace/name`. */
  readonly policies = new Map<string, V1NetworkPolicy>();
  private version = 0;
  private readonly server = http.createServer((req, res) => {
    let text = '';
    req.on('data', chunk => {
      text += chunk;
    });
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const request: FakeApiRequest = {
        method: req.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        ...(text ? { body: JSON.parse(text) } : {}),
      };
      this.requests.push(request);
      const [status, body] = this.answer(request);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    });
  });

  constructor(private readonly namespaces: string[] = ['tailscale']) {}

  async start(): Promise<string> {
    await new Promise<void>(resolve =>
      this.server.listen(0, '127.0.0.1', resolve),
    );
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>(resolve => this.server.close(() => resolve()));
  }

  /** Requests that changed (or, in a dry run, would change) something. */
  writes(): FakeApiRequest[] {
    return this.requests.filter(
      r => r.method === 'PATCH' || r.method === 'DELETE',
    );
  }

  private answer({
    method,
    path,
    query,
    body,
  }: FakeApiRequest): [number, unknown] {
    if (method === 'GET' && path === '/api/v1') {
      return [
        200,
        {
          kind: 'APIResourceList',
          groupVersion: 'v1',
          resources: [
            {
              name: 'namespaces',
              kind: 'Namespace',
              namespaced: false,
              verbs: ['get'],
            },
            {
              name: 'services',
              kind: 'Service',
              namespaced: true,
              verbs: ['get', 'patch', 'delete'],
            },
          ],
        },
      ];
    }
    if (method === 'GET' && path === '/apis/networking.k8s.io/v1') {
      return [
        200,
        {
          kind: 'APIResourceList',
          groupVersion: 'networking.k8s.io/v1',
          resources: [
            {
              name: 'networkpolicies',
              kind: 'NetworkPolicy',
              namespaced: true,
              verbs: ['get', 'patch', 'delete'],
            },
          ],
        },
      ];
    }
    const namespace = /^\/api\/v1\/namespaces\/([^/]+)$/.exec(path)?.[1];
    if (method === 'GET' && namespace !== undefined) {
      return this.namespaces.includes(namespace)
        ? [
            200,
            {
              apiVersion: 'v1',
              kind: 'Namespace',
              metadata: { name: namespace },
            },
          ]
        : notFound('namespaces', namespace);
    }
    const object = OBJECT.exec(path)?.groups;
    if (!object)
      return [404, { kind: 'Status', code: 404, message: `no route ${path}` }];
    const store: Map<string, KubernetesObject> =
      object.resource === 'services' ? this.services : this.policies;
    const key = `${object.namespace}/${object.name}`;
    const current = store.get(key);
    switch (method) {
      case 'GET':
        return current
          ? [200, current]
          : notFound(object.resource, object.name);
      case 'PATCH': {
        const applied = body as KubernetesObject;
        const stored: KubernetesObject = {
          ...applied,
          metadata: {
            ...applied.metadata,
            uid: current?.metadata?.uid ?? `uid-${object.name}`,
            resourceVersion: String(++this.version),
          },
        };
        if (query.get('dryRun') !== 'All') store.set(key, stored);
        return [current ? 200 : 201, stored];
      }
      case 'DELETE': {
        if (!current) return notFound(object.resource, object.name);
        const dryRun = (body as { dryRun?: string[] } | undefined)?.dryRun;
        if (!dryRun?.includes('All')) store.delete(key);
        return [200, current];
      }
      default:
        return [405, { kind: 'Status', code: 405 }];
    }
  }
}

function notFound(resource: string, name: string): [number, unknown] {
  return [
    404,
    {
      kind: 'Status',
      apiVersion: 'v1',
      status: 'Failure',
      reason: 'NotFound',
      code: 404,
      message: `${resource} "${name}" not found`,
    },
  ];
}

/** Deps whose clusters east, west and central all live at `url`. */
export function depsAt(url: string): MeshActionDeps {
  return {
    config: new ConfigReader({
      mesh: { tailscale: { dnsName: 'tail1234.ts.net' } },
    }),
    clusters: new ClusterAccess(
      ['east', 'west', 'central'].map(name => ({
        name,
        url,
        token: 'token',
        // client-node speaks plain HTTP only with TLS verification off.
        skipTLSVerify: true,
      })),
    ),
  } as unknown as MeshActionDeps;
}
