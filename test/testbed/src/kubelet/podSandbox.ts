/**
 * What a kubelet does for a pod before and while its container runs, for the few pods the test
 * bed runs for real (istiod): the pod's volumes materialised as files, its environment resolved,
 * its ServiceAccount tokens requested and refreshed. kwok (the test bed's node agent) only fakes
 * pod status; this is the part of a kubelet that the real process needs.
 *
 * Followed (kubernetes/kubernetes v1.34, paths in that repository):
 * - volumes: pkg/volume/secret, pkg/volume/configmap, pkg/volume/projected (serviceAccountToken,
 *   configMap, secret, downwardAPI sources), pkg/volume/downwardapi, pkg/volume/emptydir; an
 *   `optional` Secret or ConfigMap that does not exist gives an empty volume; items pick keys.
 *   The ServiceAccount admission plugin adds the `kube-api-access-*` projected volume to every pod,
 *   so the standard token, `ca.crt` and namespace files come from the pod spec like any volume.
 * - tokens: pkg/kubelet/token/token_manager.go requests a bound token (TokenRequest with
 *   `boundObjectRef` = the pod) and refreshes it at 80% of its lifetime.
 * - env: pkg/kubelet/kubelet_pods.go makeEnvironmentVariables (value, `$(VAR)` expansion from
 *   third_party/forked/golang/expansion, fieldRef, resourceFieldRef, configMapKeyRef,
 *   secretKeyRef, envFrom) and pkg/api/v1/resource for resourceFieldRef defaults.
 * Secret and ConfigMap volumes are re-read every few seconds (the kubelet syncs them about once a
 * minute; sooner only makes tests quicker) and rewritten atomically when they change.
 *
 * Not modelled: hostPath, PVCs, CSI and image volumes (a pod using one fails to start with that
 * reason), service-link environment variables, subPath expansion. Files holding secrets are
 * written 0600 under a 0700 pod directory (a kubelet writes 0644 inside the container's private
 * mount), and the directory is removed when the pod stops.
 */
import fs from 'node:fs';
import path from 'node:path';
import type {
  V1Container,
  V1EnvVar,
  V1KeyToPath,
  V1Volume,
  V1VolumeProjection,
} from '@kubernetes/client-node';
import { KubeApiError, KubeRest } from '../kube/kubeClient';

export interface PodObject {
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    deletionTimestamp?: string;
  };
  spec: {
    containers: V1Container[];
    initContainers?: V1Container[];
    volumes?: V1Volume[];
    serviceAccountName?: string;
    nodeName?: string;
  };
  status?: {
    podIP?: string;
    hostIP?: string;
    phase?: string;
    conditions?: Array<{ type: string; status: string }>;
  };
}

export const podReady = (pod: PodObject) =>
  !!pod.status?.conditions?.some(c => c.type === 'Ready' && c.status === 'True');

/** Node allocatable CPU stands in when a container sets no limit; capped to this machine's cores. */
const NODE_CPUS = 2;

interface TokenSpec {
  file: string;
  audience?: string;
  expirationSeconds: number;
  refreshAt: number;
}

/** One pod's files and environment, kept current while the pod runs. */
export class PodSandbox {
  readonly root: string;
  private readonly tokens = new Map<string, TokenSpec>();
  private readonly written = new Map<string, string>();
  private timer?: NodeJS.Timeout;
  private refreshing?: Promise<void>;

  constructor(
    readonly pod: PodObject,
    readonly container: V1Container,
    private readonly rest: KubeRest,
    podsDir: string,
    private readonly log: (msg: string) => void,
  ) {
    this.root = path.join(
      podsDir,
      `${pod.metadata.namespace}_${pod.metadata.name}_${pod.metadata.uid.slice(0, 8)}`,
    );
  }

  /** A path inside the pod's file system, as the container sees it from its root. */
  inPod(p: string): string {
    return path.join(this.root, p);
  }

  async prepare(): Promise<void> {
    fs.mkdirSync(this.root, { recursive: true, mode: 0o700 });
    await this.syncVolumes();
    // The kubelet keeps secret, configMap and token volumes current while the pod runs.
    this.timer = setInterval(() => {
      this.refreshing ??= this.syncVolumes()
        .catch(err => this.log(`volume refresh failed: ${String(err)}`))
        .finally(() => (this.refreshing = undefined));
    }, 5000);
    this.timer.unref();
  }

  async dispose(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.refreshing;
    fs.rmSync(this.root, { recursive: true, force: true });
  }

  /** The container's environment, as the kubelet builds it (no host environment leaks in). */
  async environment(): Promise<Record<string, string>> {
    const env: Record<string, string> = {
      HOSTNAME: this.pod.metadata.name,
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    };
    for (const from of this.container.envFrom ?? []) {
      const prefix = from.prefix ?? '';
      const data = from.configMapRef
        ? await this.configMapData(from.configMapRef.name ?? '', from.configMapRef.optional)
        : from.secretRef
          ? await this.secretData(from.secretRef.name ?? '', from.secretRef.optional)
          : {};
      for (const [k, v] of Object.entries(data ?? {})) env[prefix + k] = v;
    }
    for (const e of this.container.env ?? []) {
      const value = await this.envValue(e, env);
      if (value !== undefined) env[e.name] = value;
    }
    return env;
  }

  /** `$(VAR)` references in command and args, expanded from the container's environment. */
  static expand(text: string, env: Record<string, string>): string {
    return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name?: string) => {
      if (m === '$$') return '$';
      return name !== undefined && name in env ? env[name] : m;
    });
  }

  private async envValue(e: V1EnvVar, env: Record<string, string>): Promise<string | undefined> {
    if (e.value !== undefined) return PodSandbox.expand(e.value, env);
    const from = e.valueFrom;
    if (!from) return '';
    if (from.fieldRef) return this.fieldValue(from.fieldRef.fieldPath);
    if (from.resourceFieldRef) {
      const { resource, divisor } = from.resourceFieldRef;
      return this.resourceValue(resource, divisor === undefined ? '1' : String(divisor));
    }
    if (from.configMapKeyRef) {
      const { name, key, optional } = from.configMapKeyRef;
      const data = await this.configMapData(name ?? '', optional);
      return data?.[key];
    }
    if (from.secretKeyRef) {
      const { name, key, optional } = from.secretKeyRef;
      const data = await this.secretData(name ?? '', optional);
      return data?.[key];
    }
    return '';
  }

  private fieldValue(fieldPath: string): string {
    const { metadata, spec, status } = this.pod;
    const mapKey = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(fieldPath);
    if (mapKey) return metadata[mapKey[1] as 'labels' | 'annotations']?.[mapKey[2]] ?? '';
    switch (fieldPath) {
      // The whole map, as the downward API writes it (kubernetes pkg/fieldpath/fieldpath.go
      // FormatMap): sorted `key="value"` lines, Go-quoted values.
      case 'metadata.labels':
      case 'metadata.annotations': {
        const map = metadata[fieldPath === 'metadata.labels' ? 'labels' : 'annotations'] ?? {};
        return Object.keys(map)
          .sort()
          .map(k => `${k}=${JSON.stringify(map[k])}`)
          .join('\n');
      }
      case 'metadata.name':
        return metadata.name;
      case 'metadata.namespace':
        return metadata.namespace;
      case 'metadata.uid':
        return metadata.uid;
      case 'spec.nodeName':
        return spec.nodeName ?? '';
      case 'spec.serviceAccountName':
        return spec.serviceAccountName ?? 'default';
      case 'status.podIP':
      case 'status.podIPs':
        return status?.podIP ?? '';
      case 'status.hostIP':
      case 'status.hostIPs':
        return status?.hostIP ?? '';
      default:
        throw new Error(`unsupported fieldRef ${fieldPath}`);
    }
  }

  /** pkg/api/v1/resource ExtractContainerResourceValue: no limit means the node's allocatable. */
  private resourceValue(resource: string, divisor: string): string {
    const [kind, name] = resource.split('.');
    const set = (kind === 'limits' ? this.container.resources?.limits : this.container.resources?.requests)?.[name];
    if (name === 'cpu') {
      const cores = set !== undefined ? parseCpu(String(set)) : NODE_CPUS;
      return String(Math.max(1, Math.ceil(cores / parseCpu(divisor))));
    }
    if (name === 'memory' || name === 'ephemeral-storage') {
      const bytes = set !== undefined ? parseQuantity(String(set)) : 8 * 2 ** 30;
      return String(Math.ceil(bytes / parseQuantity(divisor)));
    }
    throw new Error(`unsupported resourceFieldRef ${resource}`);
  }

  // ---- volumes ---------------------------------------------------------------------------------------

  private async syncVolumes(): Promise<void> {
    const volumes = new Map((this.pod.spec.volumes ?? []).map(v => [v.name, v]));
    for (const mount of this.container.volumeMounts ?? []) {
      const volume = volumes.get(mount.name);
      if (!volume) throw new Error(`volume mount ${mount.name} names no volume of the pod`);
      const dir = this.inPod(mount.mountPath);
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      const files = await this.volumeFiles(volume, mount.mountPath);
      for (const [rel, content] of Object.entries(files)) this.write(path.join(dir, rel), content);
    }
  }

  /** The files of one volume, relative to its mount point. */
  private async volumeFiles(volume: V1Volume, mountPath: string): Promise<Record<string, string>> {
    if (volume.emptyDir) return {};
    if (volume.secret) {
      const data = await this.secretData(volume.secret.secretName ?? '', volume.secret.optional);
      return pick(data, volume.secret.items);
    }
    if (volume.configMap) {
      const data = await this.configMapData(volume.configMap.name ?? '', volume.configMap.optional);
      return pick(data, volume.configMap.items);
    }
    if (volume.downwardAPI) {
      const out: Record<string, string> = {};
      for (const item of volume.downwardAPI.items ?? []) {
        if (item.fieldRef) out[item.path] = this.fieldValue(item.fieldRef.fieldPath);
      }
      return out;
    }
    if (volume.projected) {
      const out: Record<string, string> = {};
      for (const source of volume.projected.sources ?? []) {
        Object.assign(out, await this.projection(source, mountPath));
      }
      return out;
    }
    throw new Error(`volume ${volume.name}: only secret, configMap, downwardAPI, projected and emptyDir volumes are modelled`);
  }

  private async projection(source: V1VolumeProjection, mountPath: string): Promise<Record<string, string>> {
    if (source.serviceAccountToken) {
      const { path: file, audience, expirationSeconds } = source.serviceAccountToken;
      return { [file]: await this.token(path.join(mountPath, file), audience, expirationSeconds ?? 3600) };
    }
    if (source.configMap) {
      const data = await this.configMapData(source.configMap.name ?? '', source.configMap.optional);
      return pick(data, source.configMap.items);
    }
    if (source.secret) {
      const data = await this.secretData(source.secret.name ?? '', source.secret.optional);
      return pick(data, source.secret.items);
    }
    if (source.downwardAPI) {
      const out: Record<string, string> = {};
      for (const item of source.downwardAPI.items ?? []) {
        if (item.fieldRef) out[item.path] = this.fieldValue(item.fieldRef.fieldPath);
      }
      return out;
    }
    return {};
  }

  /** A bound ServiceAccount token, re-requested at 80% of its lifetime (token_manager.go). */
  private async token(key: string, audience: string | undefined, expirationSeconds: number): Promise<string> {
    const cached = this.tokens.get(key);
    const current = this.written.get(this.inPod(key));
    if (cached && current !== undefined && Date.now() < cached.refreshAt) return current;
    const { namespace, name, uid } = this.pod.metadata;
    const sa = this.pod.spec.serviceAccountName ?? 'default';
    const res = await this.rest.json<{ status?: { token?: string; expirationTimestamp?: string } }>(
      'POST',
      `/api/v1/namespaces/${encodeURIComponent(namespace)}/serviceaccounts/${encodeURIComponent(sa)}/token`,
      {
        body: {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenRequest',
          spec: {
            audiences: audience ? [audience] : [],
            expirationSeconds: Math.max(600, expirationSeconds),
            boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name, uid },
          },
        },
      },
    );
    const token = res.status?.token;
    if (!token) throw new Error(`TokenRequest for ${namespace}/${sa} returned no token`);
    const expires = Date.parse(res.status?.expirationTimestamp ?? '') || Date.now() + expirationSeconds * 1000;
    const now = Date.now();
    this.tokens.set(key, { file: key, audience, expirationSeconds, refreshAt: now + (expires - now) * 0.8 });
    return token;
  }

  private async secretData(name: string, optional?: boolean): Promise<Record<string, string> | undefined> {
    const obj = await this.get<{ data?: Record<string, string> }>('secrets', name, optional);
    if (!obj) return undefined;
    return Object.fromEntries(
      Object.entries(obj.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
    );
  }

  private async configMapData(name: string, optional?: boolean): Promise<Record<string, string> | undefined> {
    const obj = await this.get<{ data?: Record<string, string> }>('configmaps', name, optional);
    return obj ? { ...(obj.data ?? {}) } : undefined;
  }

  private async get<T>(resource: string, name: string, optional?: boolean): Promise<T | undefined> {
    const ns = encodeURIComponent(this.pod.metadata.namespace);
    try {
      return await this.rest.json<T>('GET', `/api/v1/namespaces/${ns}/${resource}/${encodeURIComponent(name)}`);
    } catch (err) {
      // An optional source that does not exist (yet) is an empty volume; a required one stops the pod.
      if (err instanceof KubeApiError && err.status === 404) {
        if (optional) return undefined;
        throw new Error(`${resource} ${name} not found (required by the pod)`);
      }
      throw err;
    }
  }

  /** Atomic write (tmp + rename), only when the content changed, 0600. */
  private write(file: string, content: string) {
    if (this.written.get(file) === content) return;
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.tmp`;
    fs.writeFileSync(tmp, content, { mode: 0o600 });
    fs.renameSync(tmp, file);
    this.written.set(file, content);
  }
}

function pick(data: Record<string, string> | undefined, items: V1KeyToPath[] | undefined): Record<string, string> {
  if (!data) return {};
  if (!items?.length) return { ...data };
  const out: Record<string, string> = {};
  for (const item of items) if (item.key in data) out[item.path] = data[item.key];
  return out;
}

function parseCpu(q: string): number {
  return q.endsWith('m') ? Number(q.slice(0, -1)) / 1000 : Number(q);
}

const SUFFIX: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
};

function parseQuantity(q: string): number {
  const m = /^([0-9.]+)([A-Za-z]*)$/.exec(q.trim());
  if (!m) throw new Error(`unparseable quantity ${q}`);
  return Number(m[1]) * (m[2] ? (SUFFIX[m[2]] ?? NaN) : 1);
}
