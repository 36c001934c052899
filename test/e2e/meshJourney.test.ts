import fs from 'node:fs';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import {
  ClustersResponse,
  ISTIO_NAMESPACE,
  MembershipResponse,
  remoteSecretName,
} from '@tailmesh/plugin-mesh-common';
import { Locator, Page } from 'playwright-core';
import { expectNoSecrets } from '../support/actions';
import { deploymentPods, setPodReady } from '../support/podReadiness';
import { eventually } from '../support/eventually';
import { BackstageClient } from '../product/backstageClient';
import { wiredButUnverified } from '../product/demoMesh';
import {
  Browser,
  launchBrowser,
  openJoinClusterPicker,
  screenshot,
  screenshotDir,
} from './support/browser';
import { e2eProduct, E2eProduct } from './support/environment';

// The product's journey in a real browser: join cluster3 from the Create page, see it on a
// service's mesh card and on the mesh page, then break the mesh in cluster2 and see the finding.
// The tests run in order and each builds on the state the one before left.

let product: E2eProduct;
let client: BackstageClient;
let browser: Browser;
let page: Page;

const url = (path: string) => `${product.url}${path}`;
const testbedCluster = (name: string) =>
  product.state.clusters.find(c => c.name === name)!;

/** The Backstage card (InfoCard) whose title is `title`. */
const card = (title: string): Locator =>
  page
    .getByRole('heading', { name: title, exact: true })
    .locator('xpath=ancestor::*[contains(@class, "MuiCard-root")][1]');

/** The mesh page's graph card, once the graph shows a node for each of `members`. */
async function meshGraphShown(members: string[]): Promise<Locator> {
  const graph = card('Mesh graph');
  for (const name of members) {
    await graph
      .getByRole('img', { name: new RegExp(`^${name}: member\\b`) })
      .waitFor();
  }
  return graph;
}

async function expectPageHasNoSecrets() {
  expectNoSecrets([await page.content()], product.secrets);
}

/** Reloads `path` until `probe` finds what it waits for: these views read their data once. */
async function reloadUntil<T>(
  what: string,
  path: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 60_000,
): Promise<T> {
  let first = true;
  return eventually(
    what,
    async () => {
      if (!first) await page.waitForTimeout(1500);
      first = false;
      await page.goto(url(path));
      return probe();
    },
    { timeoutMs },
  );
}

beforeAll(async () => {
  product = e2eProduct();
  client = await product.client();
  fs.rmSync(screenshotDir, { recursive: true, force: true });
  browser = await launchBrowser();
  page = browser.page;

  await page.goto(product.url);
  // The journey joins a cluster: the mesh admin may; a guest may only read (see below).
  const enter = page.getByRole('button', { name: 'Enter as mesh admin' });
  await enter.waitFor();
  await screenshot(page, '01-sign-in');
  await enter.click();
  // Signed in: the app's sidebar, with the mesh page's own nav item.
  await page.getByRole('link', { name: 'Mesh' }).first().waitFor();
  await screenshot(page, '01b-catalog');
});

afterAll(async () => {
  await browser?.close();
});

describe('the local product in Chromium', () => {
  let joinStatus = '';
  let joinSteps: Record<string, string> = {};
  let errorsBefore = -1;
  let graphOk = -1;

  it('joins cluster3 from the Create page through the cluster picker', async () => {
    await page.goto(url('/create'));
    const title = page.getByRole('heading', { name: 'Join cluster to mesh' });
    await title.waitFor();
    await screenshot(page, '02-create-page');
    // The picker lists every configured cluster and says which are members.
    const option = await openJoinClusterPicker(page);
    await option('cluster3').waitFor();
    expect(await option('cluster1').textContent()).toMatch(/reachable.*member/);
    expect(await option('cluster2').textContent()).not.toMatch(/not a member/);
    expect(await option('cluster3').textContent()).toMatch(/not a member/);
    await screenshot(page, '03-cluster-picker');
    await option('cluster3').click();

    const cluster3 = testbedCluster('cluster3');
    await page
      .getByRole('textbox', { name: 'Istio network' })
      .fill(cluster3.network);
    await page.getByRole('textbox', { name: 'Region' }).fill(cluster3.region);
    await page.getByRole('textbox', { name: 'Zone' }).fill(cluster3.zones[0]);
    await screenshot(page, '04-join-cluster');
    await page.getByRole('button', { name: 'Next' }).click();

    await page
      .getByRole('textbox', { name: 'Tailnet MagicDNS domain' })
      .fill(product.state.tailnet);
    await page.getByRole('button', { name: 'Next' }).click();
    // The optional traffic check: a Job in cluster3 sends requests to echo, which runs in
    // cluster1 and cluster2 (the test bed runs the Job's requests as its sidecar would:
    // test/testbed/src/kubelet/checkJobRunner.ts).
    await page.getByRole('textbox', { name: 'Service' }).fill('echo');
    await page.getByRole('button', { name: 'Next' }).click();
    // The optional OAuth client stays empty: the backend's configured one is used.
    await page.getByRole('button', { name: 'Review' }).click();
    await page.getByRole('cell', { name: 'cluster3', exact: true }).waitFor();
    await screenshot(page, '05-join-review');

    const started = Date.now();
    await page.getByRole('button', { name: 'Create' }).click();
    await page.waitForURL(/\/create\/tasks\/[^/]+$/);
    const taskId = page.url().split('/').pop()!;
    await screenshot(page, '06-join-running');

    const status = await eventually(
      'the join task to finish',
      async () => {
        const task = await client.get<{ status: string }>(
          `/api/scaffolder/v2/tasks/${taskId}`,
        );
        return ['completed', 'failed', 'cancelled'].includes(task.status)
          ? task.status
          : undefined;
      },
      { timeoutMs: 240_000 },
    );
    const { log, steps } = await client.taskEvents(taskId);
    joinStatus = status;
    // Every wiring step must have run; mesh:verify, judging by what the real istiods report, is
    // the one step that may fail until issue 13 (asserted on its own below).
    if (status !== 'completed' && !wiredButUnverified({ status, steps })) {
      throw new Error(`join task ${status}:\n${log.slice(-20).join('\n')}`);
    }
    // The task page shows the template's output once the task has finished, or its failed step.
    await page
      .getByText(
        status === 'completed'
          ? /cluster3 joined mesh mesh1/
          : /is not healthy/,
      )
      .first()
      .waitFor({ timeout: 30_000 });
    joinSteps = steps;
    process.stdout.write(
      `\ntraffic check of the join: ${log.filter(l => l.includes('requests from cluster3')).join(' | ')}\n`,
    );
    if (status === 'completed') {
      // The traffic check's result, in the template's output on the task page.
      await page
        .getByText(/answered by cluster1 \d+, cluster2 \d+; 0 of 20 failed/)
        .first()
        .waitFor({ timeout: 10_000 });
    }
    const ms = Date.now() - started;
    process.stdout.write(
      `\njoin of cluster3 from the browser: ${(ms / 1000).toFixed(1)} s (Create clicked to output shown)\n`,
    );
    await screenshot(page, '07-join-finished');
    expect(log.join('\n')).toMatch(/cluster3/);
    expectNoSecrets(log, product.secrets);
    await expectPageHasNoSecrets();
  });

  it('and the join task completes, mesh:verify and the traffic check included', () => {
    expect(joinStatus).toBe('completed');
    expect(joinSteps.traffic).toBe('completed');
  });

  it("lists cluster3 on the echo service's mesh card", async () => {
    const meshCard = card('Service mesh');
    const row = (name: string) =>
      meshCard.getByRole('row').filter({
        has: page.getByRole('rowheader', { name, exact: true }),
      });
    // cluster3 runs no echo of its own: istiod sends its requests to both members' east-west
    // gateways, each weighted by the endpoints behind it.
    const route = await reloadUntil(
      "cluster3 to reach echo through both members' gateways on the mesh card",
      '/catalog/default/component/echo',
      async () => {
        await row('cluster3').waitFor();
        const text = (await row('cluster3').textContent()) ?? '';
        return /cluster1's gateway \(\d+, [^)]+\) \+ cluster2's gateway/.test(
          text,
        )
          ? text
          : undefined;
      },
    );
    expect(route).toMatch(/not serving/);
    for (const [name, peer] of [
      ['cluster1', 'cluster2'],
      ['cluster2', 'cluster1'],
    ]) {
      expect(await row(name).textContent()).toMatch(
        new RegExp(`serving.*local endpoints \\(\\d+\\) \\+ ${peer}'s gateway`),
      );
    }
    await screenshot(page, '08-echo-service');
    await screenshot(meshCard, 'card-echo-mesh');
    await expectPageHasNoSecrets();
  });

  it('updates the echo card within 2 s of a pod going not ready in cluster2, without a reload, and asks nothing while nothing changes', async () => {
    // Where the page is: the echo card the test before loaded, which it keeps open.
    expect(page.url()).toBe(url('/catalog/default/component/echo'));
    const meshCard = card('Service mesh');
    const ready = (name: string) =>
      meshCard
        .getByRole('row')
        .filter({ has: page.getByRole('rowheader', { name, exact: true }) })
        .getByRole('cell')
        .nth(1);
    await eventually(
      'both echo pods of cluster2 ready on the card',
      async () =>
        (await ready('cluster2').textContent()) === '2/2' ? true : undefined,
    );
    const asked: string[] = [];
    const onRequest = (r: { url(): string }) => {
      if (r.url().includes('/api/mesh/')) asked.push(r.url());
    };
    page.on('request', onRequest);
    try {
      // A quiet mesh: longer than the 10 s the card would poll at without signals.
      await page.waitForTimeout(12_000);
      expect(asked).toEqual([]);

      const kc = new KubeConfig();
      kc.loadFromFile(testbedCluster('cluster2').kubeconfigPath);
      const [pod] = await deploymentPods(kc, 'default', 'echo');
      const started = Date.now();
      await setPodReady(kc, pod, false);
      try {
        await ready('cluster2')
          .filter({ hasText: /^1\/2$/ })
          .waitFor({ timeout: 2000 });
        const ms = Date.now() - started;
        process.stdout.write(
          `\nthe echo card showed the not-ready pod after ${ms} ms\n`,
        );
        expect(asked.length).toBeGreaterThan(0);
        await screenshot(meshCard, 'card-echo-pod-not-ready');
      } finally {
        await setPodReady(kc, pod, true);
      }
      await ready('cluster2')
        .filter({ hasText: /^2\/2$/ })
        .waitFor({ timeout: 2000 });
    } finally {
      page.off('request', onRequest);
    }
  });

  it('shows three members on the mesh page', async () => {
    // istiod's verdict on a new peer takes up to PILOT_REMOTE_CLUSTER_TIMEOUT (30 s): the page is
    // judged once every istiod has one, not while it is still `syncing`.
    const members = ['cluster1', 'cluster2', 'cluster3'];
    await eventually(
      "every member's istiod verdict on every peer",
      async () => {
        const m = await client.get<MembershipResponse>('/api/mesh/membership');
        const cells = m.matrix
          .flat()
          .filter(
            c =>
              c.from !== c.to &&
              members.includes(c.from) &&
              members.includes(c.to),
          );
        return cells.length === 6 &&
          cells.every(c =>
            ['synced', 'timeout', 'closed'].includes(c.istiodSync),
          )
          ? true
          : undefined;
      },
      { timeoutMs: 120_000 },
    );
    const clusters = card('Clusters');
    const row = (name: string) =>
      clusters.getByRole('row').filter({
        has: page.getByRole('rowheader', { name, exact: true }),
      });
    await reloadUntil('three members on the mesh page', '/mesh', async () => {
      await row('cluster3').waitFor();
      const texts = await Promise.all(
        ['cluster1', 'cluster2', 'cluster3'].map(name =>
          row(name).textContent(),
        ),
      );
      return texts.every(t => /member/.test(t!) && !/not a member/.test(t!))
        ? texts
        : undefined;
    });
    const findings = card('Audit findings');
    await findings.waitFor();
    errorsBefore = await findings
      .getByRole('cell', { name: 'error', exact: true })
      .count();
    // No part of the page may have crashed into an error panel.
    expect(await page.getByText(/Something went wrong/i).count()).toBe(0);
    expect(
      await page.getByRole('status', { name: 'Mesh health' }).textContent(),
    ).toMatch(/^The mesh (is healthy|works, with warnings)/);
    // The graph stays invisible until its layout has settled, about a second after the data
    // shows: without this wait the screenshot catches an empty card.
    const graph = await meshGraphShown(['cluster1', 'cluster2', 'cluster3']);
    expect(await graph.locator('g[data-status]').count()).toBe(3);
    graphOk = await graph.locator('g[data-status="ok"]').count();
    await screenshot(page, 'page-mesh');
    await expectPageHasNoSecrets();
  });

  it('and no error finding, every node of the graph ok', () => {
    expect(errorsBefore).toBe(0);
    expect(graphOk).toBe(3);
  });

  it("refuses a guest's Leave of cluster2 before its first step, and cluster2 stays a member", async () => {
    const guest = await product.guestClient();
    // The guest reads the mesh...
    const before = await guest.get<ClustersResponse>('/api/mesh/clusters');
    expect(before.clusters.find(c => c.name === 'cluster2')?.member).toBe(true);
    // ...and the product's policy refuses it the mesh actions.
    const task = await guest.runTemplate('template:default/leave-mesh', {
      cluster: 'cluster2',
    });
    expect(task.status).toBe('failed');
    expect(task.log.join('\n')).toMatch(
      /Unauthorized action: mesh:[a-z:-]+\. The action is not allowed/,
    );
    expect(Object.values(task.steps).filter(s => s === 'completed')).toEqual(
      [],
    );
    const after = await client.get<ClustersResponse>('/api/mesh/clusters');
    expect(after.clusters.find(c => c.name === 'cluster2')?.member).toBe(true);
  });

  it('shows the finding once cluster2 loses its remote secret for cluster3', async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(testbedCluster('cluster2').kubeconfigPath);
    await kc.makeApiClient(CoreV1Api).deleteNamespacedSecret({
      name: remoteSecretName('cluster3'),
      namespace: ISTIO_NAMESPACE,
    });

    // What the backend's audit says, and then that the page shows it.
    const finding = await eventually(
      'an error finding about cluster2 and cluster3 from the mesh backend',
      async () => {
        const membership = await client.get<MembershipResponse>(
          '/api/mesh/membership',
        );
        return membership.findings.find(
          f =>
            f.severity === 'error' &&
            f.clusters.includes('cluster2') &&
            f.clusters.includes('cluster3'),
        );
      },
    );
    const findings = card('Audit findings');
    const shown = await reloadUntil(
      'the finding on the mesh page',
      '/mesh',
      async () => {
        await findings.waitFor();
        const matching = findings
          .getByRole('row')
          .filter({ hasText: finding.message });
        return (await matching.count()) === 1 ? matching : undefined;
      },
    );
    // The same query that counted the errors before finds this one among them.
    expect(
      await findings.getByRole('cell', { name: 'error', exact: true }).count(),
    ).toBeGreaterThan(0);
    expect(await shown.textContent()).toMatch(/error/);
    expect(await shown.textContent()).toContain(finding.fix);
    // The page's first line says so too, naming both clusters.
    const health = page.getByRole('status', { name: 'Mesh health' });
    expect(await health.textContent()).toMatch(
      /^The mesh needs attention: \d+ errors?/,
    );
    for (const c of ['cluster2', 'cluster3'])
      expect(
        await health.getByRole('link', { name: c, exact: true }).count(),
      ).toBe(1);
    await meshGraphShown(['cluster1', 'cluster2', 'cluster3']);
    await screenshot(page, '09-mesh-finding');
    await screenshot(findings, 'card-audit-findings');
    await expectPageHasNoSecrets();
  });

  it('keeps the mesh page usable at a hundred members: rendered in seconds, no long freeze', async () => {
    // The backend at 100 clusters is measured in backend/hundredClusters.test.ts; here the
    // browser gets what such a backend answers: the product's own answers, with cluster1 as a
    // hundred healthy members and two missing links.
    const real = await client.get<ClustersResponse>('/api/mesh/clusters');
    const template = real.clusters.find(c => c.name === 'cluster1')!;
    const names = Array.from(
      { length: 100 },
      (_, i) => `fleet-${String(i + 1).padStart(3, '0')}`,
    );
    const clusters: ClustersResponse = {
      ...real,
      clusters: names.map(name => ({
        ...template,
        name,
        knownPeers: names.filter(n => n !== name),
      })),
    };
    const broken = new Set(['fleet-007→fleet-042', 'fleet-007→fleet-043']);
    const membershipAt100: MembershipResponse = {
      clusters: names,
      matrix: names.map(from =>
        names.map(to => {
          const self = from === to;
          return {
            from,
            to,
            remoteSecret: self
              ? ('not-applicable' as const)
              : broken.has(`${from}→${to}`)
                ? ('missing' as const)
                : ('present' as const),
            gatewayInMeshNetworks: self
              ? ('not-applicable' as const)
              : ('present' as const),
            istiodSync: self
              ? ('not-applicable' as const)
              : ('synced' as const),
          };
        }),
      ),
      findings: [],
      generatedAt: new Date().toISOString(),
    };
    const json = (body: unknown) => ({
      status: 200,
      contentType: 'application/json',
      body: JSON.stringify(body),
    });
    await page.route('**/api/mesh/clusters', route =>
      route.fulfill(json(clusters)),
    );
    await page.route('**/api/mesh/membership', route =>
      route.fulfill(json(membershipAt100)),
    );
    try {
      // Long tasks (over 50 ms on the main thread) from navigation on: a freeze is a long one.
      await page.addInitScript(() => {
        const w = window as unknown as { longTasks: number[] };
        w.longTasks = [];
        new PerformanceObserver(list => {
          for (const e of list.getEntries()) w.longTasks.push(e.duration);
        }).observe({ type: 'longtask', buffered: true });
      });
      const started = Date.now();
      await page.goto(url('/mesh'));
      await page
        .getByRole('table', { name: 'Membership by member' })
        .getByRole('rowheader', { name: 'fleet-007' })
        .waitFor();
      const shownMs = Date.now() - started;
      const graph = card('Mesh graph');
      await graph
        .getByRole('img', {
          name: 'fleet-007 ↔ fleet-042: fleet-007 → fleet-042 missing',
        })
        .waitFor();
      const graphMs = Date.now() - started;
      await page
        .getByText('100 members, 9,900 links: 9,898 ok, 2 missing, 0 broken')
        .waitFor();
      // The clusters card lists only the clusters that need attention (none here, unless
      // cluster1, the model of all hundred, has something not ready right now).
      await card('Clusters')
        .getByText(/^\d+ of 100 clusters shown$/)
        .waitFor();
      const longTasks = await page.evaluate(
        () => (window as unknown as { longTasks: number[] }).longTasks,
      );
      const longest = Math.max(0, ...longTasks);
      console.log(
        `mesh page at 100 members: membership shown after ${shownMs} ms, graph after ${graphMs} ms; ` +
          `${longTasks.length} long tasks, the longest ${Math.round(longest)} ms`,
      );
      await screenshot(page, 'page-mesh-100');
      // A loaded CI machine (two cores, a test bed beside) is slower than a user's laptop; the
      // full 100 x 100 matrix took far longer than this before it was replaced.
      expect(shownMs).toBeLessThan(10_000);
      expect(longest).toBeLessThan(3_000);
    } finally {
      await page.unrouteAll({ behavior: 'ignoreErrors' });
    }
  });

  it("keeps every credential out of the backend's log", async () => {
    const log = product.backendLog;
    // The log is the real one: it holds the join run from the browser.
    expect(log).toMatch(/cluster3: east-west gateway is reachable/);
    expectNoSecrets(log.split('\n'), product.secrets);
  });
});
