/**
 * `npm run bench:user-path`: what a signed-in user's views cost. Starts the local product (the
 * same backend `npm start` runs: guest sign-in, the catalog, the permission backend with its
 * policy, the mesh backend) on its own 3-cluster test bed in a loopback-only namespace, signs in
 * as the guest user the way the app does, and loads, with that user's token, each mesh route
 * beside the same backend's floor (an authenticated, permission-checked catalog read) and an
 * unauthenticated route. Twice: with `mesh.authorizationCacheSeconds: 0` (every request verifies
 * the token, asks the permission backend and the catalog) and with the default 3 s. Each pass
 * runs the backend with `--cpu-prof`, and the table of where its CPU went is cut to the load's
 * own time window (V8's profile clock and this process's `hrtime` are both the monotonic clock).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { startProductEnvironment } from '../product/productEnvironment';
import { BackstageClient } from '../product/backstageClient';
import { stopTestbed } from '../testbed/src/testbed';
import { BackendClient, LoadResult } from './loadGenerator';
import { HEALTH, ROUTES, parseUserLoadOptions } from './userRoutes';

interface CpuProfile {
  nodes: Array<{
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    hitCount?: number;
  }>;
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Where a sampled function lives: an npm package, Node itself, or V8's own buckets. */
function ownerOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1];
  if (url.startsWith('node:')) return 'node (core)';
  if (/\/plugins\/[^/]+\//.test(url))
    return `tailmesh ${/\/plugins\/([^/]+)\//.exec(url)![1]}`;
  return path.basename(url);
}

/** CPU time per owner and per function within [fromUs, toUs] of the monotonic clock. */
function summarizeProfile(file: string, fromUs: number, toUs: number) {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map(n => [n.id, n]));
  const owners = new Map<string, number>();
  const functions = new Map<string, number>();
  let t = profile.startTime;
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i];
    const dt = profile.timeDeltas[i + 1] ?? 0;
    if (t < fromUs || t > toUs) continue;
    const node = byId.get(profile.samples[i]);
    if (!node) continue;
    const { url, functionName, lineNumber } = node.callFrame;
    const owner = ownerOf(url, functionName);
    owners.set(owner, (owners.get(owner) ?? 0) + dt);
    const fn = `${functionName || '(anonymous)'} ${owner}${url ? `:${lineNumber + 1}` : ''}`;
    functions.set(fn, (functions.get(fn) ?? 0) + dt);
    total += dt;
  }
  const top = (m: Map<string, number>, n: number) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, us]) => ({
        name,
        ms: Math.round(us / 1000),
        share: total ? us / total : 0,
      }));
  return {
    totalMs: Math.round(total / 1000),
    owners: top(owners, 12),
    functions: top(functions, 12),
  };
}

const nowUs = () => Number(process.hrtime.bigint() / 1000n);

async function main() {
  const { requests, concurrency } = parseUserLoadOptions();

  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tailmesh-user-path-'));
  const stateDir = path.join(work, 'testbed');
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const passes: Array<{
    cacheSeconds: number;
    results: Record<string, LoadResult>;
    profile: ReturnType<typeof summarizeProfile>;
  }> = [];
  try {
    for (const cacheSeconds of [0, 3]) {
      const pass = path.join(work, `cache-${cacheSeconds}`);
      fs.mkdirSync(pass, { mode: 0o700 });
      const extra = path.join(pass, 'app-config.bench.yaml');
      fs.writeFileSync(
        extra,
        stringify({ mesh: { authorizationCacheSeconds: cacheSeconds } }),
        { mode: 0o600 },
      );
      const profileDir = path.join(pass, 'profile');
      const nodeOptions = process.env.NODE_OPTIONS;
      process.env.NODE_OPTIONS =
        `${nodeOptions ?? ''} --cpu-prof --cpu-prof-dir=${profileDir}`.trim();
      say(
        `pass with mesh.authorizationCacheSeconds: ${cacheSeconds}: starting the product`,
      );
      const env = await startProductEnvironment({
        stateDir,
        clusters: 3,
        basePort: 33000,
        backendPort: 7307,
        extraConfigPaths: [extra],
        logDir: pass,
        onProgress: line => say(`  ${line}`),
      });
      if (nodeOptions === undefined) delete process.env.NODE_OPTIONS;
      else process.env.NODE_OPTIONS = nodeOptions;
      const token = (await BackstageClient.signInAsGuest(env.apiUrl)).token;
      const user = new BackendClient(env.apiUrl, token, concurrency);
      const anonymous = new BackendClient(env.apiUrl, '', concurrency);
      const results: Record<string, LoadResult> = {};
      let from = 0;
      let to = 0;
      try {
        // Warm-up: JIT, connection pools, the catalog's and the permission backend's caches.
        for (const r of ROUTES) await user.load(r.request, 300, concurrency);
        from = nowUs();
        for (const r of ROUTES) {
          results[r.id] = await user.load(r.request, requests, concurrency);
          say(`  ${r.label}: ${results[r.id].throughput.toFixed(0)}/s`);
        }
        results.health = await anonymous.load(HEALTH, requests, concurrency);
        to = nowUs();
      } finally {
        user.close();
        anonymous.close();
        await env.stop({ keepTestbed: true });
      }
      // Every node process the start-up ran (an app build, say) leaves a profile there: the
      // backend's is the one that spans the load.
      const profile = fs
        .readdirSync(profileDir)
        .filter(f => f.endsWith('.cpuprofile'))
        .map(f => path.join(profileDir, f))
        .find(f => {
          const p = JSON.parse(fs.readFileSync(f, 'utf8')) as CpuProfile & {
            endTime: number;
          };
          return p.startTime <= from && p.endTime >= to;
        });
      if (!profile)
        throw new Error(
          `the backend left no CPU profile of the load in ${profileDir}`,
        );
      passes.push({
        cacheSeconds,
        results,
        profile: summarizeProfile(profile, from, to),
      });
      for (const r of Object.values(results)) {
        if (r.failed)
          throw new Error(
            `${r.failed} requests failed: ${JSON.stringify(r.statuses)}`,
          );
      }
    }
  } finally {
    await stopTestbed(stateDir).catch(() => undefined);
    // The test bed's kubeconfigs and tokens go, failure or not (the profiles were read above).
    fs.rmSync(work, { recursive: true, force: true });
  }

  const fmt = (r: LoadResult) =>
    `${r.throughput.toFixed(0).padStart(6)}/s p50 ${r.latencyMs.p50.toFixed(0).padStart(4)} ms p99 ${r.latencyMs.p99.toFixed(0).padStart(4)} ms`;
  say(
    `\n${requests} requests per route, ${concurrency} concurrent, guest user token (health: no token)`,
  );
  say(
    `${'route'.padEnd(56)} ${passes.map(p => `cache ${p.cacheSeconds} s`.padEnd(40)).join('')}x floor`,
  );
  for (const r of [
    ...ROUTES,
    { id: 'health', label: 'mesh GET /health (unauthenticated)' },
  ]) {
    const cells = passes.map(p => fmt(p.results[r.id]).padEnd(40)).join('');
    const last = passes[passes.length - 1].results;
    say(
      `${r.label.padEnd(56)} ${cells}${(last[r.id].throughput / last.catalogFloor.throughput).toFixed(2)}`,
    );
  }
  for (const p of passes) {
    say(
      `\nbackend CPU during the load, cache ${p.cacheSeconds} s: ${p.profile.totalMs} ms sampled`,
    );
    for (const o of p.profile.owners)
      say(`  ${(o.share * 100).toFixed(1).padStart(5)} %  ${o.name}`);
    say('  top functions:');
    for (const f of p.profile.functions.slice(0, 8))
      say(`  ${(f.share * 100).toFixed(1).padStart(5)} %  ${f.name}`);
  }
  const file = path.join(
    __dirname,
    'results',
    `user-path-${new Date().toISOString().replace(/[:.]/g, '-')}.json`,
  );
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(
    file,
    JSON.stringify({ requests, concurrency, passes }, null, 2),
  );
  say(`results: ${path.relative(process.cwd(), file)}`);
}

main().catch(e => {
  process.stderr.write(
    `bench:user-path failed: ${e instanceof Error ? e.message : String(e)}\n`,
  );
  process.exit(1);
});
