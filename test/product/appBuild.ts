import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../testbed/src/layout';

const appDir = path.join(repoRoot, 'packages', 'app');
const stampFile = path.join(appDir, 'dist', '.tailmesh-build-stamp');
const backstageCli = path.join(
  repoRoot,
  'node_modules',
  '@backstage',
  'cli',
  'bin',
  'backstage-cli',
);

/** Everything the app bundle is built from: the app, the frontend plugin and what it imports. */
const inputs = [
  'packages/app/src',
  'packages/app/public',
  'packages/app/package.json',
  'plugins/mesh/src',
  'plugins/mesh/package.json',
  'plugins/mesh-common/src',
  'plugins/mesh-common/package.json',
  'package-lock.json',
];

function* files(entry: string): Generator<string> {
  const stat = fs.statSync(entry, { throwIfNoEntry: false });
  if (!stat) return;
  if (!stat.isDirectory()) {
    yield entry;
    return;
  }
  for (const name of fs.readdirSync(entry).sort())
    yield* files(path.join(entry, name));
}

/** A digest of the bundle's inputs: the build is redone exactly when one of them changed. */
export function appInputsDigest(): string {
  const hash = crypto.createHash('sha256');
  for (const input of inputs) {
    for (const file of files(path.join(repoRoot, input))) {
      hash.update(path.relative(repoRoot, file));
      hash.update('\0');
      hash.update(fs.readFileSync(file));
      hash.update('\0');
    }
  }
  return hash.digest('hex');
}

/**
 * Makes sure packages/app/dist is a production build of the current sources, which the backend's
 * app plugin serves (injecting the runtime config, so one build serves any port or cluster set).
 * Returns whether it built, and how long that took.
 */
export async function ensureAppBuild(opts: {
  logFile: string;
  onProgress?: (line: string) => void;
  force?: boolean;
}): Promise<{ built: boolean; ms: number }> {
  const started = Date.now();
  const digest = appInputsDigest();
  const current = fs.existsSync(stampFile)
    ? fs.readFileSync(stampFile, 'utf8')
    : undefined;
  if (!opts.force && current === digest) return { built: false, ms: 0 };

  opts.onProgress?.('building the app (production bundle)');
  const log = fs.openSync(opts.logFile, 'w', 0o600);
  const child = spawn(process.execPath, [backstageCli, 'package', 'build'], {
    cwd: appDir,
    stdio: ['ignore', log, log],
    // Callers such as Jest set NODE_ENV=test, which the app's browserslist has no entry for.
    env: { ...process.env, NODE_ENV: 'production' },
  });
  fs.closeSync(log);
  const ticker = setInterval(
    () =>
      opts.onProgress?.(
        `still building the app (${Math.round((Date.now() - started) / 1000)} s)`,
      ),
    10_000,
  );
  const code = await new Promise<number | null>(resolve => {
    child.once('exit', resolve);
    child.once('error', () => resolve(-1));
  }).finally(() => clearInterval(ticker));
  if (code !== 0) {
    const tail = fs
      .readFileSync(opts.logFile, 'utf8')
      .trimEnd()
      .split('\n')
      .slice(-25)
      .join('\n');
    throw new Error(
      `building the app failed (exit ${code}); log: ${opts.logFile}\n${tail}`,
    );
  }
  fs.writeFileSync(stampFile, digest);
  return { built: true, ms: Date.now() - started };
}
