import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LoggerService } from '@backstage/backend-plugin-api';
import { ConflictError, NotAllowedError } from '@backstage/errors';
import { parseAllDocuments, stringify } from 'yaml';
import { isDeepStrictEqual } from 'node:util';

/**
 * The release label (`helm --labels`, kept in the release's storage Secret beside helm's own
 * owner/name/status labels) that marks a release Tailmesh installed or adopted. Only such releases
 * are upgraded without `adopt` and uninstalled at all.
 */
export const HELM_RELEASE_LABEL = 'tailmesh.dev/installed-by';
export const HELM_RELEASE_LABEL_VALUE = 'tailmesh';

/** The refusal for a release Tailmesh did not install, where adopt would take it over. */
export function foreignReleaseError(
  namespace: string,
  release: string,
  cluster: string,
): NotAllowedError {
  return new NotAllowedError(
    `helm release ${namespace}/${release} on ${cluster} was not installed by Tailmesh (its release has no ${HELM_RELEASE_LABEL}=${HELM_RELEASE_LABEL_VALUE} label), so Tailmesh leaves it alone; nothing was changed. To let Tailmesh manage it, run again with adopt: its deployed values are kept and Tailmesh's merged over them (a dry run shows the result first)`,
  );
}

/** How old a `pending-*` release must be before Tailmesh takes it for abandoned (default). */
export const DEFAULT_PENDING_REPAIR_AFTER_SECONDS = 600;

/**
 * Where a chart comes from: a local directory, or a name in a chart repository.
 *
 * @public
 */
export interface ChartRef {
  chart: string;
  repo?: string;
  version?: string;
}

/** @public */
export interface HelmReleaseSpec {
  release: string;
  namespace: string;
  chart: ChartRef;
  values: Record<string, unknown>;
  /**
   * An upgrade always keeps the values the deployed release already has (as
   * `helm upgrade --reuse-values` would) and merges `values` over them, so it changes only what Tailmesh sets
   * and never drops a value someone added. Objects merge key by key; at the `replace` paths (e.g.
   * `['global', 'meshNetworks']`) Tailmesh's value replaces the deployed one whole, so an entry
   * Tailmesh removed on purpose does not survive the merge.
   */
  keepDeployedValues?: { replace?: ReadonlyArray<ReadonlyArray<string>> };
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** `ours` merged over `theirs` (objects key by key, anything else replaced), with `replace` paths taken whole from `ours`. */
export function mergeValues(
  theirs: Record<string, unknown>,
  ours: Record<string, unknown>,
  replace: ReadonlyArray<ReadonlyArray<string>> = [],
  at: ReadonlyArray<string> = [],
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...theirs };
  for (const [key, value] of Object.entries(ours)) {
    const path = [...at, key];
    const whole = replace.some(
      r => r.length === path.length && r.every((k, i) => k === path[i]),
    );
    out[key] =
      !whole && isPlainObject(value) && isPlainObject(theirs[key])
        ? mergeValues(
            theirs[key] as Record<string, unknown>,
            value,
            replace,
            path,
          )
        : value;
  }
  return out;
}

/** @public */
export interface HelmRunOptions {
  /** kubeconfig YAML of the target cluster: written to a 0600 file only for the call. */
  kubeconfigYaml: string;
  logger: LoggerService;
  cluster: string;
  /** Values never to be shown, even inside helm's own error output. */
  secrets?: string[];
  signal?: AbortSignal;
  /**
   * Take over a release Tailmesh did not install: its deployed values are kept and Tailmesh's
   * merged over them, and it is labelled as Tailmesh's from then on. Without it such a release
   * stops the step before anything is written.
   */
  adopt?: boolean;
}

/**
 * Who installed a release: absent, Tailmesh (labelled), or someone else.
 *
 * @public
 */
export type ReleaseOwnership = 'absent' | 'ours' | 'foreign';

/** @public */
export type HelmOutcome = 'installed' | 'upgraded' | 'unchanged';

interface DeployedRelease {
  name: string;
  status: string;
  chart: string;
  revision: string;
  /** As helm prints it: `2026-12-03 12:00:00.123456789 +0000 UTC`. */
  updated: string;
}

interface ReleaseRevision {
  revision: number;
  status: string;
}

/** helm's `updated` time as epoch milliseconds (NaN when it cannot be read). */
export function parseHelmTime(updated: string): number {
  const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(\.\d+)? ([+-]\d\d)(\d\d)/.exec(
    updated,
  );
  if (!m) return NaN;
  const fraction = (m[3] ?? '').slice(0, 4);
  return Date.parse(`${m[1]}T${m[2]}${fraction}${m[4]}:${m[5]}`);
}

const TEMP_DIR_PREFIX = 'tailmesh-helm-';

const processAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: alive, someone else's.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * Removes the private temp dirs (kubeconfig and values, 0600) that a backend killed mid-helm
 * left behind: those whose process is gone. A live process's dirs, this one's included, stay.
 * Answers the dirs removed.
 */
export async function sweepAbandonedHelmDirs(
  tmpDir: string = os.tmpdir(),
): Promise<string[]> {
  const removed: string[] = [];
  let entries: string[];
  try {
    entries = await fs.readdir(tmpDir);
  } catch {
    return removed;
  }
  const uid = process.getuid?.();
  for (const name of entries) {
    const m = new RegExp(`^${TEMP_DIR_PREFIX}(\\d+)-`).exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || processAlive(pid)) continue;
    const dir = path.join(tmpDir, name);
    try {
      const stat = await fs.lstat(dir);
      if (!stat.isDirectory() || (uid !== undefined && stat.uid !== uid))
        continue;
      await fs.rm(dir, { recursive: true, force: true });
      removed.push(dir);
    } catch {
      // Gone already, or not ours to remove.
    }
  }
  return removed;
}

/** Releases a helm call of this process is changing now, by cluster/namespace/release. */
const inFlight = new Set<string>();

const REDACTED = '<redacted>';

/** Secret annotations that hold no credentials: Tailmesh's own, and Istio's cluster name. */
const SHOWN_SECRET_ANNOTATIONS =
  /^(tailmesh\.dev\/|networking\.istio\.io\/cluster$)/;

function scrub(text: string, secrets: string[]): string {
  let out = text;
  for (const s of secrets) if (s) out = out.split(s).join(REDACTED);
  return out;
}

/** Rendered manifests with every Secret's data replaced, so a dry run can show them. */
export function redactSecretManifests(manifests: string): string {
  return parseAllDocuments(manifests)
    .map(doc => {
      const obj = doc.toJS() as Record<string, unknown> | null;
      if (!obj) return '';
      if (obj.kind === 'Secret') {
        // kubectl's last-applied-configuration holds the whole object as applied, data included
        // (istioctl's remote secrets carry a kubeconfig there); any annotation of a Secret may be
        // such a copy, so only those known to hold none are shown.
        const metadata = obj.metadata as
          { annotations?: Record<string, unknown> } | undefined;
        if (metadata?.annotations)
          metadata.annotations = Object.fromEntries(
            Object.entries(metadata.annotations).map(([k, v]) => [
              k,
              SHOWN_SECRET_ANNOTATIONS.test(k) ? v : REDACTED,
            ]),
          );
        for (const key of ['data', 'stringData'] as const) {
          const data = obj[key] as Record<string, unknown> | undefined;
          if (data)
            obj[key] = Object.fromEntries(
              Object.keys(data).map(k => [k, REDACTED]),
            );
        }
      }
      return stringify(obj);
    })
    .filter(Boolean)
    .join('---\n');
}

/**
 * Runs the real helm binary. Credentials reach it only through files in a private temp dir
 * (0700, files 0600) that is removed whatever happens; its argv holds paths, never values.
 *
 * @public
 */
export class Helm {
  constructor(
    private readonly binary: string = 'helm',
    private readonly options: { pendingRepairAfterSeconds?: number } = {},
  ) {}

  private async withFiles<T>(
    opts: HelmRunOptions,
    values: Record<string, unknown> | undefined,
    fn: (files: {
      kubeconfig: string;
      values?: string;
      dir: string;
    }) => Promise<T>,
  ): Promise<T> {
    // The pid in the name lets a later backend remove what a killed one left (sweepAbandoned).
    const dir = await fs.mkdtemp(
      path.join(os.tmpdir(), `${TEMP_DIR_PREFIX}${process.pid}-`),
    );
    try {
      await fs.chmod(dir, 0o700);
      const kubeconfig = path.join(dir, 'kubeconfig');
      await fs.writeFile(kubeconfig, opts.kubeconfigYaml, { mode: 0o600 });
      let valuesFile: string | undefined;
      if (values) {
        valuesFile = path.join(dir, 'values.yaml');
        await fs.writeFile(valuesFile, stringify(values), { mode: 0o600 });
      }
      return await fn({ kubeconfig, values: valuesFile, dir });
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }

  private run(
    args: string[],
    dir: string,
    opts: HelmRunOptions,
  ): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(
        this.binary,
        args,
        {
          signal: opts.signal,
          maxBuffer: 64 * 1024 * 1024,
          // A private helm home: no repository list or cache of the host is read or changed.
          env: {
            PATH: process.env.PATH,
            HOME: dir,
            HELM_CACHE_HOME: path.join(dir, 'cache'),
            HELM_CONFIG_HOME: path.join(dir, 'config'),
            HELM_DATA_HOME: path.join(dir, 'data'),
          },
        },
        (err, stdout, stderr) => {
          if (err) {
            const secrets = opts.secrets ?? [];
            const message = scrub((stderr || err.message).trim(), secrets);
            reject(
              new Error(
                `helm ${args[0]} on ${opts.cluster} failed: ${message}`,
              ),
            );
          } else {
            resolve(stdout);
          }
        },
      );
    });
  }

  private chartArgs(chart: ChartRef): string[] {
    return [
      chart.chart,
      ...(chart.repo ? ['--repo', chart.repo] : []),
      ...(chart.version ? ['--version', chart.version] : []),
    ];
  }

  private async deployed(
    spec: HelmReleaseSpec,
    kubeconfig: string,
    dir: string,
    opts: HelmRunOptions,
  ) {
    const list = (selector?: string) =>
      this.run(
        [
          'list',
          '--kubeconfig',
          kubeconfig,
          '-n',
          spec.namespace,
          '--filter',
          `^${spec.release}$`,
          '-a',
          ...(selector ? ['--selector', selector] : []),
          '-o',
          'json',
        ],
        dir,
        opts,
      ).then(out => JSON.parse(out) as DeployedRelease[]);
    const release = (await list()).find(r => r.name === spec.release);
    if (!release) return undefined;
    const labelled = await list(
      `${HELM_RELEASE_LABEL}=${HELM_RELEASE_LABEL_VALUE}`,
    );
    const owned = labelled.some(r => r.name === spec.release);
    const values = JSON.parse(
      await this.run(
        [
          'get',
          'values',
          spec.release,
          '--kubeconfig',
          kubeconfig,
          '-n',
          spec.namespace,
          '-o',
          'json',
        ],
        dir,
        opts,
      ),
    ) as Record<string, unknown> | null;
    return { release, values: values ?? {}, owned };
  }

  /**
   * The chart's name-version as helm records it, so an unchanged release is recognised without
   * a new revision (helm upgrade always makes one).
   */
  private async chartVersion(
    spec: HelmReleaseSpec,
    dir: string,
    opts: HelmRunOptions,
  ): Promise<string> {
    const meta = await this.run(
      ['show', 'chart', ...this.chartArgs(spec.chart)],
      dir,
      opts,
    );
    const name = /^name:\s*(\S+)/m.exec(meta)?.[1];
    const version = /^version:\s*(\S+)/m.exec(meta)?.[1];
    return `${name}-${version}`;
  }

  /** One helm command on a release: `args`, then the cluster's kubeconfig and the namespace. */
  private onRelease(
    args: string[],
    namespace: string,
    files: { kubeconfig: string; dir: string },
    opts: HelmRunOptions,
  ): Promise<string> {
    return this.run(
      [...args, '--kubeconfig', files.kubeconfig, '-n', namespace],
      files.dir,
      opts,
    );
  }

  private key(opts: HelmRunOptions, namespace: string, release: string) {
    return `${opts.cluster}/${namespace}/${release}`;
  }

  /** Runs `fn` as the one helm change of this process on that release. */
  private async exclusively<T>(
    opts: HelmRunOptions,
    namespace: string,
    release: string,
    fn: () => Promise<T>,
  ): Promise<T> {
    const key = this.key(opts, namespace, release);
    if (inFlight.has(key)) {
      throw new ConflictError(
        `helm release ${namespace}/${release} on ${opts.cluster} is being changed by another task right now; nothing was changed, run again once it has finished`,
      );
    }
    inFlight.add(key);
    try {
      return await fn();
    } finally {
      inFlight.delete(key);
    }
  }

  /**
   * A release left `pending-install`/`-upgrade`/`-rollback` (a helm killed mid-way: a cancelled
   * task, a crashed backend) blocks every later helm change ("another operation is in progress").
   * Once it is older than any helm operation may take, it is put back as helm's docs say: rolled
   * back to its last good revision, or uninstalled if it never had one.
   */
  private async repairPending(
    current: { release: DeployedRelease; owned: boolean },
    namespace: string,
    files: { kubeconfig: string; dir: string },
    opts: HelmRunOptions & { dryRun?: boolean },
  ): Promise<'rolled-back' | 'uninstalled' | 'none'> {
    const { release } = current;
    if (!release.status.startsWith('pending-')) return 'none';
    const what = `helm release ${namespace}/${release.name} on ${opts.cluster}`;
    const after =
      this.options.pendingRepairAfterSeconds ??
      DEFAULT_PENDING_REPAIR_AFTER_SECONDS;
    const age = (Date.now() - parseHelmTime(release.updated)) / 1000;
    if (!(age >= after)) {
      throw new ConflictError(
        `${what} is ${release.status} since ${release.updated}: a helm operation may still be running. Nothing was changed; Tailmesh repairs a release left ${release.status} once it is ${after}s old (mesh.helm.pendingRepairAfterSeconds), run again then`,
      );
    }
    const history = JSON.parse(
      await this.onRelease(
        ['history', release.name, '-o', 'json'],
        namespace,
        files,
        opts,
      ),
    ) as ReleaseRevision[];
    const good = history
      .filter(r => r.status === 'deployed' || r.status === 'superseded')
      .map(r => r.revision)
      .sort((x, y) => y - x)[0];
    const action = good === undefined ? 'uninstalled' : 'rolled-back';
    opts.logger.warn(
      `${what} was left ${release.status} (${Math.round(age)}s ago, a helm run that did not finish): ${
        good === undefined
          ? 'uninstalling it, as it never deployed'
          : `rolling it back to revision ${good}`
      }${opts.dryRun ? ' (dry run: not done)' : ''}`,
    );
    if (opts.dryRun) return action;
    await this.onRelease(
      good === undefined
        ? ['uninstall', release.name, '--wait']
        : ['rollback', release.name, String(good), '--wait'],
      namespace,
      files,
      opts,
    );
    return action;
  }

  /** Whether a release is absent, Tailmesh's (labelled), or someone else's. */
  async ownership(
    release: string,
    namespace: string,
    opts: HelmRunOptions,
  ): Promise<ReleaseOwnership> {
    return this.withFiles(opts, undefined, async files => {
      const current = await this.deployed(
        { release, namespace, chart: { chart: '' }, values: {} },
        files.kubeconfig,
        files.dir,
        opts,
      );
      if (!current) return 'absent';
      return current.owned ? 'ours' : 'foreign';
    });
  }

  /**
   * `helm upgrade --install`, unless the release is already deployed from the same chart version
   * with the same values. A release Tailmesh did not install stops it before anything is written,
   * unless `adopt` is set. In a dry run, helm renders against the server and nothing is written;
   * the manifests come back with Secret data redacted.
   */
  async upgradeInstall(
    spec: HelmReleaseSpec,
    opts: HelmRunOptions & { dryRun?: boolean },
  ): Promise<{ outcome: HelmOutcome; manifests?: string }> {
    const what = `helm release ${spec.namespace}/${spec.release} on ${opts.cluster}`;
    return this.exclusively(opts, spec.namespace, spec.release, () =>
      this.withFiles(opts, undefined, async files => {
        let current = await this.deployed(
          spec,
          files.kubeconfig,
          files.dir,
          opts,
        );
        if (current && !current.owned && !opts.adopt) {
          throw foreignReleaseError(spec.namespace, spec.release, opts.cluster);
        }
        if (current && !current.owned) {
          opts.logger.info(
            `${what}: adopting a release Tailmesh did not install (${current.release.chart}); its deployed values are kept, Tailmesh's merged over them`,
          );
        }
        if (current) {
          const repaired = await this.repairPending(
            current,
            spec.namespace,
            files,
            opts,
          );
          if (repaired !== 'none' && opts.dryRun) {
            // helm renders nothing against a release still pending; the repair is the news.
            return { outcome: 'upgraded' as const };
          }
          if (repaired !== 'none') {
            current = await this.deployed(
              spec,
              files.kubeconfig,
              files.dir,
              opts,
            );
          }
        }
        const values = current
          ? mergeValues(
              current.values,
              spec.values,
              spec.keepDeployedValues?.replace,
            )
          : spec.values;
        const valuesFile = path.join(files.dir, 'values.yaml');
        await fs.writeFile(valuesFile, stringify(values), { mode: 0o600 });
        const chartVersion = await this.chartVersion(spec, files.dir, opts);
        if (
          current?.owned &&
          current.release.status === 'deployed' &&
          current.release.chart === chartVersion &&
          isDeepStrictEqual(current.values, JSON.parse(JSON.stringify(values)))
        ) {
          opts.logger.info(
            `${opts.cluster}: helm release ${spec.namespace}/${spec.release} (${chartVersion}) unchanged`,
          );
          return { outcome: 'unchanged' as const };
        }
        const args = [
          'upgrade',
          spec.release,
          ...this.chartArgs(spec.chart),
          '--install',
          '--kubeconfig',
          files.kubeconfig,
          '-n',
          spec.namespace,
          '--create-namespace',
          '-f',
          valuesFile,
          '--labels',
          `${HELM_RELEASE_LABEL}=${HELM_RELEASE_LABEL_VALUE}`,
          ...(opts.dryRun ? ['--dry-run=server', '-o', 'json'] : []),
        ];
        const out = await this.run(args, files.dir, opts);
        const outcome: HelmOutcome = current ? 'upgraded' : 'installed';
        if (opts.dryRun) {
          const manifest =
            (JSON.parse(out) as { manifest?: string }).manifest ?? '';
          opts.logger.info(
            `${opts.cluster}: helm release ${spec.namespace}/${spec.release} would be ${outcome} (dry run, ${chartVersion})`,
          );
          return {
            outcome,
            manifests: scrub(
              redactSecretManifests(manifest),
              opts.secrets ?? [],
            ),
          };
        }
        opts.logger.info(
          `${opts.cluster}: helm release ${spec.namespace}/${spec.release} ${outcome} (${chartVersion})`,
        );
        return { outcome };
      }),
    );
  }

  /**
   * `helm uninstall`, a no-op when the release is not there. A release Tailmesh did not install is
   * never removed: that stops the step before anything is written.
   */
  async uninstall(
    release: string,
    namespace: string,
    opts: HelmRunOptions & { dryRun?: boolean },
  ): Promise<boolean> {
    return this.exclusively(opts, namespace, release, () =>
      this.withFiles(opts, undefined, async files => {
        const current = await this.deployed(
          { release, namespace, chart: { chart: '' }, values: {} },
          files.kubeconfig,
          files.dir,
          opts,
        );
        if (!current) {
          opts.logger.info(
            `${opts.cluster}: helm release ${namespace}/${release} absent, unchanged`,
          );
          return false;
        }
        if (!current.owned) {
          throw new NotAllowedError(
            `helm release ${namespace}/${release} on ${opts.cluster} was not installed by Tailmesh (no ${HELM_RELEASE_LABEL}=${HELM_RELEASE_LABEL_VALUE} label), so Tailmesh does not uninstall it; nothing was changed`,
          );
        }
        if (!opts.dryRun) {
          await this.onRelease(
            ['uninstall', release, '--wait'],
            namespace,
            files,
            opts,
          );
        }
        opts.logger.info(
          `${opts.cluster}: helm release ${namespace}/${release} uninstalled${opts.dryRun ? ' (dry run)' : ''}`,
        );
        return true;
      }),
    );
  }
}
