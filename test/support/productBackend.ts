import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  mockCredentials,
  mockServices,
  startTestBackend,
} from '@backstage/backend-test-utils';
import { Entity } from '@backstage/catalog-model';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import scaffolderPlugin from '@backstage/plugin-scaffolder-backend';
import meshPlugin from '@tailmesh/plugin-mesh-backend';
import scaffolderModuleMesh from '@tailmesh/plugin-scaffolder-backend-module-mesh';
import request from 'supertest';
import { parse, parseAllDocuments } from 'yaml';
import { repoRoot } from '../testbed/src/layout';
import { testbedAppConfig } from './meshConfig';
import { testbed } from './testbed';

/** A template of this repository, as the catalog would serve it. */
export function template(name: string): Entity {
  const entity = parse(
    fs.readFileSync(
      path.join(
        repoRoot,
        'plugins',
        'scaffolder-backend-module-mesh',
        'templates',
        name,
        'template.yaml',
      ),
      'utf8',
    ),
  ) as Entity;
  return { ...entity, metadata: { ...entity.metadata, namespace: 'default' } };
}

/** The example catalog's entities (examples/entities.yaml), as the local product's catalog has them. */
export function exampleEntities(): Entity[] {
  return parseAllDocuments(
    fs.readFileSync(path.join(repoRoot, 'examples', 'entities.yaml'), 'utf8'),
  )
    .map(d => d.toJS() as Entity | null)
    .filter((e): e is Entity => Boolean(e))
    .map(e => ({
      ...e,
      metadata: { ...e.metadata, namespace: e.metadata.namespace ?? 'default' },
    }));
}

export interface TaskResult {
  status: string;
  output: Record<string, unknown>;
  log: string[];
  /** The status of each step that ran, by step id. */
  steps: Record<string, string>;
}

/** The values of a "Join cluster to mesh" run for a test bed cluster. */
export function joinValues(cluster: string, meshId: string) {
  const c = testbed().clusters.find(x => x.name === cluster)!;
  return {
    cluster,
    network: c.network,
    region: c.region,
    zone: `${c.region}-a`,
    meshId,
    tailnet: testbed().tailnet,
  };
}

export type ProductBackend = Awaited<ReturnType<typeof startProductBackend>>;

/**
 * A test backend with the real scaffolder and the mesh module (the templates in its catalog),
 * and, with `meshBackend`, the mesh backend plugin too, configured for the given test bed
 * clusters as a platform team would configure them.
 */
export async function startProductBackend(
  clusters: string[],
  opts: {
    meshBackend?: boolean;
    policyPollIntervalSeconds?: number;
    /** `mesh.charts` entries in place of the development charts (e.g. releaseCharts()). */
    charts?: Record<string, { chart: string }>;
  } = {},
) {
  const base = testbedAppConfig(clusters);
  const config = {
    ...base,
    mesh: {
      ...base.mesh,
      charts: { ...base.mesh.charts, ...opts.charts },
      tailscale: {
        ...base.mesh.tailscale,
        ...(opts.policyPollIntervalSeconds === undefined
          ? {}
          : { policyPollIntervalSeconds: opts.policyPollIntervalSeconds }),
      },
    },
  };
  const backend = await startTestBackend({
    features: [
      scaffolderPlugin,
      scaffolderModuleMesh,
      ...(opts.meshBackend ? [meshPlugin] : []),
      catalogServiceMock.factory({
        // The mesh card's Services are answered for entities the caller can see.
        entities: [
          template('join-cluster-to-mesh'),
          template('leave-mesh'),
          ...exampleEntities(),
        ],
      }),
      mockServices.rootConfig.factory({ data: config }),
    ],
  });
  const auth = () => mockCredentials.user.header();

  /** Starts a task from a template and waits until the engine finishes it. */
  async function runTemplate(
    name: string,
    values: Record<string, unknown>,
  ): Promise<TaskResult> {
    const created = await request(backend.server)
      .post('/api/scaffolder/v2/tasks')
      .set('authorization', auth())
      .send({ templateRef: `template:default/${name}`, values });
    if (created.status !== 201)
      throw new Error(`task not created: ${created.status} ${created.text}`);
    const id = created.body.id as string;
    const deadline = Date.now() + 300_000;
    for (;;) {
      const task = await request(backend.server)
        .get(`/api/scaffolder/v2/tasks/${id}`)
        .set('authorization', auth());
      if (['completed', 'failed', 'cancelled'].includes(task.body.status)) {
        const events = await request(backend.server)
          .get(`/api/scaffolder/v2/tasks/${id}/events`)
          .set('authorization', auth());
        const all = events.body as Array<{
          type: string;
          body: { message?: string; stepId?: string; status?: string };
        }>;
        const steps: Record<string, string> = {};
        for (const e of all) {
          if (e.body.stepId && e.body.status)
            steps[e.body.stepId] = e.body.status;
        }
        return {
          status: task.body.status,
          output: task.body.spec?.output ?? {},
          log: all.filter(e => e.type === 'log').map(e => e.body.message ?? ''),
          steps,
        };
      }
      if (Date.now() > deadline) throw new Error(`task ${id} did not finish`);
      await sleep(500);
    }
  }

  return {
    server: backend.server,
    runTemplate,
    /** A GET of the product's API as a signed-in user. */
    get: (apiPath: string) =>
      request(backend.server).get(apiPath).set('authorization', auth()),
    auth,
    stop: () => backend.stop(),
  };
}

/** Fails with the task's last log lines unless it completed. */
export function expectCompleted(task: TaskResult) {
  if (task.status !== 'completed')
    throw new Error(`task ${task.status}:\n${task.log.slice(-30).join('\n')}`);
}
