#!/usr/bin/env node
/*
 * Builds and packs every plugin package the way it is published (`npm pack`, which runs
 * `backstage-cli package prepack`/`postpack`), then checks each tarball as a host would receive it:
 * entry points and types in dist/, the compiled config schema, the migrations, no source, and
 * dependencies a host resolves by range. Node-side packages are loaded from the unpacked tarball.
 * Needs neither the test bed nor Go.
 *
 * Usage: node scripts/pack-plugins.js [outDir]   (default: dist-packs/)
 * Shape followed: backstage/backstage plugins/scaffolder-backend-module-github/package.json.
 */
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const outDir = path.resolve(process.argv[2] ?? path.join(root, 'dist-packs'));
const plugins = fs
  .readdirSync(path.join(root, 'plugins'))
  .filter(d => fs.existsSync(path.join(root, 'plugins', d, 'package.json')));
const internal = new Set(
  plugins.map(
    d =>
      JSON.parse(
        fs.readFileSync(path.join(root, 'plugins', d, 'package.json'), 'utf8'),
      ).name,
  ),
);

const run = (cmd, args, cwd = root) =>
  execFileSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });

const problems = [];
const problem = (pkg, text) => problems.push(`${pkg}: ${text}`);

// Declarations first: backstage-cli package build bundles them from dist-types (the repo's
// `npm run tsc` only type-checks).
console.log('[pack] tsc (declarations into dist-types)');
run(path.join(root, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json']);

fs.rmSync(outDir, { recursive: true, force: true });
fs.mkdirSync(outDir, { recursive: true });
const gitStatus = () =>
  run('git', ['status', '--porcelain', '--', 'plugins']).trim();
const statusBefore = gitStatus();
// A stand-in host inside the repository: its node_modules holds the unpacked tarballs, so they
// resolve each other from there; their other dependencies resolve through the repository's
// node_modules above it, as they would through a host's.
const host = path.join(root, '.tools', 'pack-host');
fs.rmSync(host, { recursive: true, force: true });
const nodeSide = [];

for (const dir of plugins) {
  const cwd = path.join(root, 'plugins', dir);
  const source = JSON.parse(
    fs.readFileSync(path.join(cwd, 'package.json'), 'utf8'),
  );
  const name = source.name;
  console.log(`[pack] ${name}: build and pack`);
  run(
    path.join(root, 'node_modules', '.bin', 'backstage-cli'),
    ['package', 'build'],
    cwd,
  );
  const packed = JSON.parse(
    run('npm', ['pack', '--json', '--pack-destination', outDir], cwd),
  );
  const tarball = path.join(outDir, packed[0].filename);
  const files = new Set(packed[0].files.map(f => f.path));

  if (`@tailmesh/plugin-${dir}` !== name && `@tailmesh/${dir}` !== name)
    problem(name, `folder plugins/${dir} is not named after the package`);
  if (source.private) problem(name, 'is private');
  if (source.repository?.directory !== `plugins/${dir}`)
    problem(name, `repository.directory is not plugins/${dir}`);

  // What the host receives: the package.json inside the tarball.
  const unpacked = fs.mkdtempSync(path.join(outDir, `${dir}-`));
  run('tar', ['-xzf', tarball, '-C', unpacked]);
  const pkgDir = path.join(unpacked, 'package');
  const pkg = JSON.parse(
    fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'),
  );
  const entries = [pkg.main, pkg.types, pkg.module].filter(Boolean);
  for (const [sub, target] of Object.entries(pkg.exports ?? {})) {
    // Conditions map to files; the `backstage` condition names the feature kind, not a file.
    const targets = (
      typeof target === 'string' ? [target] : Object.values(target)
    ).filter(t => String(t).startsWith('./'));
    for (const t of targets) entries.push(t);
    if (
      sub !== './package.json' &&
      !targets.some(t => String(t).startsWith('./dist/'))
    )
      problem(name, `export ${sub} does not point into dist/`);
  }
  for (const e of entries) {
    if (!files.has(e.replace(/^\.\//, '')))
      problem(name, `entry point ${e} is not in the tarball`);
  }
  if (![...files].some(f => f.endsWith('.d.ts')))
    problem(name, 'has no type declarations');
  const sources = [...files].filter(f => f.startsWith('src/'));
  if (sources.length)
    problem(name, `ships source files (${sources.slice(0, 3).join(', ')})`);
  if (source.configSchema) {
    if (
      pkg.configSchema !== 'config.schema.json' ||
      !files.has('config.schema.json')
    )
      problem(name, 'has no compiled config schema (config.schema.json)');
  }
  if (fs.existsSync(path.join(cwd, 'migrations'))) {
    for (const m of fs.readdirSync(path.join(cwd, 'migrations')))
      if (!files.has(`migrations/${m}`))
        problem(name, `migration ${m} is not in the tarball`);
  }
  // Whatever the source package lists in `files` (the scaffolder module's templates) ships.
  for (const f of source.files ?? [])
    if (
      f !== 'dist' &&
      f !== source.configSchema &&
      ![...files].some(p => p === f || p.startsWith(`${f}/`))
    )
      problem(name, `${f} (in "files") is not in the tarball`);
  for (const [dep, range] of Object.entries({
    ...pkg.dependencies,
    ...pkg.peerDependencies,
  })) {
    if (/^(workspace|file|link):/.test(range))
      problem(name, `${dep} is ${range}`);
    if (
      (dep.startsWith('@backstage/') || internal.has(dep)) &&
      !range.startsWith('^')
    )
      problem(name, `${dep} is pinned (${range}), not a ^ range`);
  }

  // Node-side packages are loaded below, from a host's node_modules that holds every tarball.
  const installed = path.join(host, 'node_modules', ...name.split('/'));
  fs.mkdirSync(path.dirname(installed), { recursive: true });
  fs.cpSync(pkgDir, installed, { recursive: true });
  if (
    [
      'backend-plugin',
      'backend-plugin-module',
      'node-library',
      'common-library',
    ].includes(pkg.backstage?.role)
  )
    nodeSide.push({ name, installed });
  fs.rmSync(unpacked, { recursive: true, force: true });
  console.log(
    `[pack] ${name}: ${path.relative(root, tarball)} (${files.size} files)`,
  );
}

for (const { name, installed } of nodeSide) {
  try {
    const exported = Object.keys(require(installed));
    if (exported.length === 0) problem(name, 'exports nothing when loaded');
    const file = require.resolve(installed);
    if (!file.startsWith(host))
      problem(name, `loaded ${file}, not the tarball's`);
  } catch (e) {
    problem(
      name,
      `does not load from its tarball: ${String(e.message).split('\n')[0]}`,
    );
  }
}
const strays = Object.keys(require.cache).filter(
  f =>
    f.startsWith(path.join(root, 'plugins')) &&
    !f.includes(`${path.sep}node_modules${path.sep}`),
);
if (strays.length)
  problems.push(
    `the packed packages loaded workspace files: ${strays.slice(0, 3).join(', ')}`,
  );

fs.rmSync(host, { recursive: true, force: true });

// Packing must leave the working tree as it was (postpack restores package.json).
const statusAfter = gitStatus();
if (statusAfter !== statusBefore)
  problems.push(`packing left changes behind:\n${statusAfter}`);

if (problems.length) {
  console.error(
    `[pack] ${problems.length} problem(s):\n- ${problems.join('\n- ')}`,
  );
  process.exit(1);
}
console.log(
  `[pack] ${plugins.length} packages packed into ${path.relative(root, outDir)}/ and checked`,
);
