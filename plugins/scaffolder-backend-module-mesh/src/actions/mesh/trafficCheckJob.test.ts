import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  MAX_TRAFFIC_CHECK_REQUESTS,
  TRAFFIC_CHECK_SCRIPT,
  describeTrafficCheck,
  parseTrafficCheckOutput,
  serviceEndpoints,
  summarizeTrafficCheck,
  trafficCheckJob,
} from './trafficCheckJob';

const spec = {
  cluster: 'east',
  namespace: 'default',
  service: 'echo',
  port: 80,
  requests: 4,
  requestTimeoutSeconds: 5,
  image: 'curlimages/curl:8.11.1',
  deadlineSeconds: 120,
};

/**
 * Runs the Job's script with a real POSIX shell, a `curl` on PATH that answers from a list of
 * canned responses (body, then status), and a file in place of /dev/termination-log.
 */
function runScript(
  responses: Array<{ body: string; code: string } | 'down'>,
): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'traffic-check-'));
  try {
    const answers = path.join(dir, 'answers');
    fs.mkdirSync(answers);
    responses.forEach((r, i) =>
      fs.writeFileSync(
        path.join(answers, String(i + 1)),
        r === 'down' ? '' : `${r.body}\n${r.code}`,
      ),
    );
    // curl -w '\n%{http_code}' prints the body, a newline and the status; without an answer it
    // prints "\n000" and exits non-zero.
    fs.writeFileSync(
      path.join(dir, 'curl'),
      `#!/bin/sh
n=$(cat "${dir}/n" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "${dir}/n"
f="${answers}/$n"
if [ ! -s "$f" ]; then printf '\\n000'; exit 28; fi
cat "$f"
`,
      { mode: 0o755 },
    );
    const log = path.join(dir, 'termination-log');
    execFileSync(
      'sh',
      ['-c', TRAFFIC_CHECK_SCRIPT.replaceAll('/dev/termination-log', log)],
      {
        env: {
          PATH: `${dir}:/usr/bin:/bin`,
          CHECK_URL: 'http://echo.default.svc.cluster.local:80/',
          CHECK_REQUESTS: String(responses.length),
          CHECK_TIMEOUT_SECONDS: '5',
        },
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
    return fs.readFileSync(log, 'utf8');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('the traffic check script', () => {
  it("writes one line per request: Istio's echo app by its Hostname line, http-echo by its text, no answer as 000", () => {
    const istioEcho =
      'ServiceVersion=\nServicePort=8080\nHost=echo\nHostname=echo-7d9f-abcde\nCluster=';
    const message = runScript([
      { body: istioEcho, code: '200' },
      { body: 'cluster2', code: '200' },
      'down',
      {
        body: 'upstream connect error or disconnect/reset before headers',
        code: '503',
      },
    ]);
    expect(message).toBe(
      '200 echo-7d9f-abcde\n200 cluster2\n000 \n503 upstreamconnecterrorordisconnectresetbeforeheaders\n',
    );
    expect(parseTrafficCheckOutput(message)).toEqual([
      { code: 200, who: 'echo-7d9f-abcde' },
      { code: 200, who: 'cluster2' },
      { code: 0, who: '' },
      { code: 503, who: 'upstreamconnecterrorordisconnectresetbeforeheaders' },
    ]);
  });

  it('keeps the message within the 4096 bytes Kubernetes keeps, at the most requests allowed', () => {
    const long = 'x'.repeat(500);
    const message = runScript(
      Array.from({ length: MAX_TRAFFIC_CHECK_REQUESTS }, () => ({
        body: long,
        code: '200',
      })),
    );
    expect(Buffer.byteLength(message)).toBeLessThanOrEqual(4096);
    expect(parseTrafficCheckOutput(message)).toHaveLength(
      MAX_TRAFFIC_CHECK_REQUESTS,
    );
  });
});

describe('trafficCheckJob', () => {
  it('asks for a native sidecar and runs with no token, no privileges and a deadline', () => {
    const job = trafficCheckJob(spec);
    const pod = job.spec!.template;
    expect(job.metadata).toMatchObject({
      generateName: 'tailmesh-traffic-check-',
      namespace: 'default',
    });
    expect(job.spec).toMatchObject({
      backoffLimit: 0,
      activeDeadlineSeconds: 120,
    });
    expect(pod.metadata!.labels).toMatchObject({
      'sidecar.istio.io/inject': 'true',
      'tailmesh.io/traffic-check': 'east',
    });
    expect(pod.metadata!.annotations).toEqual({
      'sidecar.istio.io/nativeSidecar': 'true',
    });
    expect(pod.spec).toMatchObject({
      restartPolicy: 'Never',
      automountServiceAccountToken: false,
    });
    const client = pod.spec!.containers[0];
    expect(client.securityContext).toMatchObject({
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(client.env).toEqual([
      { name: 'CHECK_URL', value: 'http://echo.default.svc.cluster.local:80/' },
      { name: 'CHECK_REQUESTS', value: '4' },
      { name: 'CHECK_TIMEOUT_SECONDS', value: '5' },
    ]);
  });
});

describe('summarizeTrafficCheck', () => {
  const endpoints = [
    serviceEndpoints('east', [
      {
        addressType: 'IPv4',
        endpoints: [
          {
            addresses: ['10.0.0.1'],
            conditions: { ready: true },
            targetRef: { kind: 'Pod', name: 'echo-a' },
          },
        ],
      },
    ]),
    serviceEndpoints('west', [
      {
        addressType: 'IPv4',
        endpoints: [
          {
            addresses: ['10.1.0.1'],
            conditions: { ready: false },
            targetRef: { kind: 'Pod', name: 'echo-b' },
          },
        ],
      },
    ]),
  ];

  it('reads readiness and pod names from the EndpointSlices', () => {
    expect(endpoints).toEqual([
      { cluster: 'east', pods: ['echo-a'], ready: true },
      { cluster: 'west', pods: ['echo-b'], ready: false },
    ]);
  });

  it('attributes answers by pod name or cluster name, and counts failures apart', () => {
    const summary = summarizeTrafficCheck(
      [
        { code: 200, who: 'echo-a' },
        { code: 200, who: 'west' },
        { code: 200, who: 'echo-b' },
        { code: 200, who: 'somebody' },
        { code: 0, who: '' },
        { code: 503, who: 'upstream' },
      ],
      endpoints,
    );
    expect(summary).toEqual({
      answeredBy: { east: 1, west: 2 },
      unattributed: ['somebody'],
      failed: 2,
    });
    expect(describeTrafficCheck(summary, 6)).toBe(
      'answered by east 1, west 2; 1 by senders of no cluster (somebody); 2 of 6 failed',
    );
  });

  it('says when nothing answered', () => {
    expect(
      describeTrafficCheck(
        summarizeTrafficCheck([{ code: 0, who: '' }], endpoints),
        1,
      ),
    ).toBe('answered by no cluster; 1 of 1 failed');
  });
});
