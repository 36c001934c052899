#!/usr/bin/env node
/* eslint-disable no-console */
/**
 * The adoption test's first half, run by `npm test` outside the loopback-only namespace (it needs
 * the npm registry): makes apps with `@backstage/create-app` as it comes (the default app, on the
 * new frontend system, and a `--legacy` one), installs their dependencies with the Yarn each app
 * pins, and wires Tailmesh into them by following the README's "Install into your Backstage"
 * section and nothing else: its `sh` blocks run in the app's folder, its `diff` blocks are applied
 * with `patch -p1`, blocks under a heading that names one frontend system only for that app.
 * Then each app type-checks (`yarn tsc`) and its frontend is built (`yarn workspace app build`).
 * `test/e2e/adoption.test.ts` starts them against the test bed and opens them in a browser.
 *
 * Usage: node test/adoption/prepare.js [kind ...]   kinds: new, legacy (default both)
 * Apps go to .adoption/<kind>/ (ignored), each step's output to .adoption/<kind>.log.
 */
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');
const adoptionDir = path.join(root, '.adoption');
const packsDir = path.join(root, 'dist-packs');
const readme = path.join(root, 'README.md');
const SECTION = '## Install into your Backstage';

const KINDS = {
  new: { createArgs: [], skipHeading: /legacy/i },
  legacy: { createArgs: ['--legacy'], skipHeading: /new frontend system/i },
};

/**
 * The section's code blocks in order, each with the `###`/`####` heading it sits under. A block
 * is what a reader copies; only `sh` and `diff` blocks are acted on (a `yaml` or `ts` block shows
 * a shape for the reader's own values, like the clusters the test bed supplies here).
 */
function readmeBlocks(text = fs.readFileSync(readme, 'utf8')) {
  const start = text.indexOf(`\n${SECTION}\n`);
  if (start < 0) throw new Error(`README.md has no "${SECTION}" section`);
  const rest = text.slice(start + SECTION.length + 2);
  const end = rest.search(/^## /m);
  const lines = (end < 0 ? rest : rest.slice(0, end)).split('\n');
  const blocks = [];
  let heading = '';
  for (let i = 0; i < lines.length; i++) {
    const h = /^#{3,4} (.*)$/.exec(lines[i]);
    if (h) heading = h[1];
    const fence = /^```(\w*)\s*$/.exec(lines[i]);
    if (!fence) continue;
    const body = [];
    for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i]);
    blocks.push({ lang: fence[1], heading, body: `${body.join('\n')}\n` });
  }
  return blocks;
}

function step(log, title, cmd, args, opts = {}) {
  const started = Date.now();
  fs.appendFileSync(log, `\n== ${title}: ${cmd} ${args.join(' ')}\n`);
  const out = fs.openSync(log, 'a');
  const r = spawnSync(cmd, args, {
    stdio: [opts.input === undefined ? 'ignore' : 'pipe', out, out],
    input: opts.input,
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
  });
  fs.closeSync(out);
  const seconds = (Date.now() - started) / 1000;
  if (r.status !== 0) {
    const tail = fs.readFileSync(log, 'utf8').split('\n').slice(-40).join('\n');
    throw new Error(
      `${title} failed (exit ${r.status ?? r.signal}) after ${seconds.toFixed(0)} s; the log's end (${log}):\n${tail}`,
    );
  }
  return seconds;
}

function prepare(kind) {
  const { createArgs, skipHeading } = KINDS[kind];
  const appDir = path.join(adoptionDir, kind);
  const log = path.join(adoptionDir, `${kind}.log`);
  fs.rmSync(appDir, { recursive: true, force: true });
  fs.writeFileSync(log, '');
  const timings = {};
  const bin = path.join(root, 'node_modules', '.bin');
  // create-app checks for a `yarn` on PATH (the root's devDependency, Yarn 1); inside the app
  // it hands over to the Yarn release the app pins (`yarnPath` in its .yarnrc.yml).
  const env = {
    PATH: `${bin}:${process.env.PATH}`,
    TAILMESH_PACKS: packsDir,
    // Yarn 4 treats a CI run as immutable installs; the README's `yarn add`s change the lock file.
    CI: '',
    YARN_ENABLE_IMMUTABLE_INSTALLS: 'false',
    YARN_ENABLE_PROGRESS_BARS: 'false',
  };
  timings.create = step(
    log,
    'create-app',
    path.join(bin, 'backstage-create-app'),
    [...createArgs, '--skip-install', '--path', appDir],
    { input: `tailmesh-adoption-${kind}\n`, env, cwd: adoptionDir },
  );
  timings.install = step(log, 'yarn install', 'yarn', ['install'], {
    cwd: appDir,
    env,
  });
  const started = Date.now();
  for (const [n, block] of readmeBlocks().entries()) {
    if (skipHeading.test(block.heading)) continue;
    if (block.lang === 'sh')
      step(
        log,
        `README block ${n + 1} (sh)`,
        'bash',
        ['-euo', 'pipefail', '-c', block.body],
        { cwd: appDir, env },
      );
    else if (block.lang === 'diff')
      step(
        log,
        `README block ${n + 1} (diff)`,
        'patch',
        ['-p1', '--forward', '--batch', '--no-backup-if-mismatch'],
        { input: block.body, cwd: appDir, env },
      );
  }
  timings.readme = (Date.now() - started) / 1000;
  timings.tsc = step(log, 'yarn tsc', 'yarn', ['tsc'], { cwd: appDir, env });
  timings.build = step(
    log,
    'yarn workspace app build',
    'yarn',
    ['workspace', 'app', 'build'],
    { cwd: appDir, env },
  );
  fs.writeFileSync(
    path.join(appDir, '.tailmesh-adoption.json'),
    `${JSON.stringify({ kind, timings }, null, 2)}\n`,
  );
  console.log(
    `[adoption] ${kind}: ready in ${appDir} (${Object.entries(timings)
      .map(([k, s]) => `${k} ${s.toFixed(0)} s`)
      .join(', ')})`,
  );
}

function main() {
  const kinds = process.argv.slice(2);
  for (const k of kinds)
    if (!KINDS[k])
      throw new Error(
        `unknown app kind "${k}"; known: ${Object.keys(KINDS).join(', ')}`,
      );
  if (!fs.existsSync(packsDir))
    throw new Error(`${packsDir} is missing: run npm run pack:plugins first`);
  fs.mkdirSync(adoptionDir, { recursive: true });
  for (const kind of kinds.length ? kinds : Object.keys(KINDS)) prepare(kind);
}

module.exports = { readmeBlocks };

if (require.main === module) {
  try {
    main();
  } catch (e) {
    console.error(`[adoption] ${e.message}`);
    process.exit(1);
  }
}
