import type { V1Job, V1EndpointSlice } from '@kubernetes/client-node';
import { compareStrings } from '@tailmesh/plugin-mesh-common';

/**
 * The recipe's own check, as a short-lived Job: a curl client in an injected pod sends requests
 * to a Service's cluster-local name and records who answered. The sidecar (not the client) picks
 * the endpoint, so the answers show where the mesh sends the Service's traffic from that cluster.
 * The pure parts (the Job, its script, reading its result) live here; checkTraffic.ts runs it.
 */

/**
 * The label of every `mesh:check-traffic` Job and its pod; the value is the cluster the Job runs
 * in. A Job left behind by a killed run can be found by it (it also deletes itself 10 minutes
 * after it finished).
 *
 * @public
 */
export const TRAFFIC_CHECK_LABEL = 'tailmesh.io/traffic-check';

/** The client container's name; its termination message holds one line per request. */
export const TRAFFIC_CHECK_CONTAINER = 'client';

/**
 * A pinned curl image (https://hub.docker.com/r/curlimages/curl, the recipe's client). It runs as
 * curl_user (uid 100) and has a POSIX shell, which is all the script needs.
 */
export const DEFAULT_TRAFFIC_CHECK_IMAGE = 'curlimages/curl:8.11.1';

/**
 * Kubernetes keeps at most 4096 bytes of a termination message
 * (k8s.io/api core/v1 types.go, TerminationMessagePath), so requests × line length stays below it:
 * 40 requests of at most 4 + 63 + 1 bytes.
 */
export const MAX_TRAFFIC_CHECK_REQUESTS = 40;

/**
 * One line per request into the termination message: the HTTP status (000 when curl got no
 * answer) and who answered: the value of a `Hostname=` line (Istio's echo app, the pod's name),
 * else the body's first line (the recipe's http-echo answers `-text=cluster1`), cut to 63 plain
 * characters. The kubelet writes /dev/termination-log into the pod's status
 * (https://kubernetes.io/docs/tasks/debug/debug-application/determine-reason-pod-failure/), so
 * reading the result needs no `pods/log` permission.
 */
export const TRAFFIC_CHECK_SCRIPT = [
  'set -u',
  ': > /dev/termination-log',
  'i=0',
  'while [ "$i" -lt "$CHECK_REQUESTS" ]; do',
  '  i=$((i + 1))',
  `  out=$(curl -s --max-time "$CHECK_TIMEOUT_SECONDS" -w '\\n%{http_code}' "$CHECK_URL" 2>/dev/null) || true`,
  `  code=$(printf '%s\\n' "$out" | tail -n 1)`,
  `  body=$(printf '%s\\n' "$out" | sed '$d')`,
  `  who=$(printf '%s\\n' "$body" | sed -n 's/^Hostname=//p' | head -n 1)`,
  `  [ -n "$who" ] || who=$(printf '%s\\n' "$body" | head -n 1)`,
  `  who=$(printf '%s' "$who" | tr -cd 'A-Za-z0-9._-' | cut -c 1-63)`,
  // Also to the pod's log, for whoever looks at the pod while it runs.
  `  printf '%s %s\\n' "$code" "$who" | tee -a /dev/termination-log`,
  'done',
].join('\n');

export interface TrafficCheckSpec {
  cluster: string;
  namespace: string;
  service: string;
  port: number;
  requests: number;
  /** Per-request limit of curl, in seconds. */
  requestTimeoutSeconds: number;
  image: string;
  /** How long the Job may run in all, in seconds (activeDeadlineSeconds). */
  deadlineSeconds: number;
}

/** `http://<service>.<namespace>.svc.cluster.local:<port>/`, the name the recipe's client asks for. */
export function trafficCheckUrl(
  s: Pick<TrafficCheckSpec, 'service' | 'namespace' | 'port'>,
): string {
  return `http://${s.service}.${s.namespace}.svc.cluster.local:${s.port}/`;
}

/**
 * The Job. Its pod asks for a sidecar (`sidecar.istio.io/inject`, which Istio's injector honours
 * in any namespace not labelled `istio-injection=disabled`) as a native sidecar
 * (`sidecar.istio.io/nativeSidecar`, istio/istio
 * manifests/charts/istio-control/istio-discovery/files/injection-template.yaml), so the client
 * starts once the proxy is ready and the Job completes when the client exits. It runs with no
 * API token, no privileges and nothing written but the termination message.
 */
export function trafficCheckJob(s: TrafficCheckSpec): V1Job {
  const labels = {
    [TRAFFIC_CHECK_LABEL]: s.cluster,
    'app.kubernetes.io/managed-by': 'tailmesh',
  };
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      generateName: 'tailmesh-traffic-check-',
      namespace: s.namespace,
      labels,
    },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: s.deadlineSeconds,
      // Deleted by the action when it is done; this catches a run that was killed first.
      ttlSecondsAfterFinished: 600,
      template: {
        metadata: {
          labels: { ...labels, 'sidecar.istio.io/inject': 'true' },
          annotations: { 'sidecar.istio.io/nativeSidecar': 'true' },
        },
        spec: {
          restartPolicy: 'Never',
          automountServiceAccountToken: false,
          containers: [
            {
              name: TRAFFIC_CHECK_CONTAINER,
              image: s.image,
              command: ['sh', '-c', TRAFFIC_CHECK_SCRIPT],
              env: [
                { name: 'CHECK_URL', value: trafficCheckUrl(s) },
                { name: 'CHECK_REQUESTS', value: String(s.requests) },
                {
                  name: 'CHECK_TIMEOUT_SECONDS',
                  value: String(s.requestTimeoutSeconds),
                },
              ],
              terminationMessagePolicy: 'File',
              resources: {
                requests: { cpu: '10m', memory: '16Mi' },
                limits: { memory: '64Mi' },
              },
              securityContext: {
                runAsNonRoot: true,
                runAsUser: 100,
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'] },
                seccompProfile: { type: 'RuntimeDefault' },
              },
            },
          ],
        },
      },
    },
  };
}

/** One request's result, as the script wrote it. */
export interface TrafficCheckAnswer {
  /** The HTTP status; 0 when no answer came. */
  code: number;
  /** Who answered (a pod name, or the body's first line); empty when nothing did. */
  who: string;
}

/** Reads the termination message; lines that are not the script's are skipped. */
export function parseTrafficCheckOutput(message: string): TrafficCheckAnswer[] {
  return message
    .split('\n')
    .map(line => /^(\d{3}) ?([A-Za-z0-9._-]*)$/.exec(line.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map(m => ({ code: Number(m[1]), who: m[2] }));
}

/** Per cluster, the pods of the Service and whether any is ready, from its EndpointSlices. */
export interface ServiceEndpoints {
  cluster: string;
  pods: string[];
  ready: boolean;
}

/** The pods behind a Service in one cluster, from its EndpointSlices' target references. */
export function serviceEndpoints(
  cluster: string,
  slices: V1EndpointSlice[],
): ServiceEndpoints {
  const endpoints = slices.flatMap(s => s.endpoints ?? []);
  return {
    cluster,
    pods: endpoints
      .filter(e => e.targetRef?.kind === 'Pod' && e.targetRef.name)
      .map(e => e.targetRef!.name!),
    ready: endpoints.some(e => e.conditions?.ready !== false),
  };
}

export interface TrafficCheckSummary {
  /** Answers per cluster that answered. */
  answeredBy: Record<string, number>;
  /** Answers whose sender could not be told: not a pod of the Service, nor a cluster's name. */
  unattributed: string[];
  /** Requests that got no answer or an error status. */
  failed: number;
}

/**
 * Which cluster each answer came from: a pod of the Service in that cluster, or (the recipe's
 * http-echo, whose body is the text it was started with) the cluster's own name.
 */
export function summarizeTrafficCheck(
  answers: TrafficCheckAnswer[],
  endpoints: ServiceEndpoints[],
): TrafficCheckSummary {
  const byPod = new Map<string, string>();
  for (const e of endpoints)
    for (const pod of e.pods) byPod.set(pod, e.cluster);
  const clusters = new Set(endpoints.map(e => e.cluster));
  const summary: TrafficCheckSummary = {
    answeredBy: {},
    unattributed: [],
    failed: 0,
  };
  for (const a of answers) {
    if (a.code < 200 || a.code > 399) {
      summary.failed++;
      continue;
    }
    const cluster =
      byPod.get(a.who) ?? (clusters.has(a.who) ? a.who : undefined);
    if (cluster)
      summary.answeredBy[cluster] = (summary.answeredBy[cluster] ?? 0) + 1;
    else summary.unattributed.push(a.who);
  }
  return summary;
}

/** "cluster1 12, cluster2 8, 0 failed" */
export function describeTrafficCheck(
  s: TrafficCheckSummary,
  requests: number,
): string {
  const answered = Object.entries(s.answeredBy)
    .sort(([a], [b]) => compareStrings(a, b))
    .map(([c, n]) => `${c} ${n}`);
  const parts = [
    answered.length
      ? `answered by ${answered.join(', ')}`
      : 'answered by no cluster',
    ...(s.unattributed.length
      ? [
          `${s.unattributed.length} by senders of no cluster (${[...new Set(s.unattributed)].slice(0, 3).join(', ')})`,
        ]
      : []),
    `${s.failed} of ${requests} failed`,
  ];
  return parts.join('; ');
}
