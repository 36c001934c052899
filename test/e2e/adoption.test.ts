import fs from 'node:fs';
import path from 'node:path';
import { Page } from 'playwright-core';
import { stringify } from 'yaml';
import { expectNoSecrets } from '../support/actions';
import { testbedMeshConfig } from '../testbed/src/appConfig';
import { repoRoot } from '../testbed/src/layout';
import { BackendProcess, startBackend } from '../product/backendProcess';
import {
  Browser,
  launchBrowser,
  openJoinClusterPicker,
  screenshot,
} from './support/browser';
import { e2eProduct, E2eProduct } from './support/environment';

// The adoption test's second half: the apps `test/adoption/prepare.js` made with
// @backstage/create-app and wired by following only the README's "Install into your Backstage"
// (installed, type-checked, built) start against this run's test bed, and a browser shows the
// mesh page and a service's mesh card in each. What the test adds is what any team adds for its
// own clusters and services: the `mesh:` config (the test bed's clusters and tailnet) and an
// entity annotated with its Service.

const KINDS = [
  // The default app (new frontend system): the plugin comes in by feature discovery.
  { kind: 'new', port: 7117 },
  // `create-app --legacy`: the README's diffs put the page, the sidebar item and the card in.
  { kind: 'legacy', port: 7127 },
] as const;

const ECHO_ENTITY = `---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: echo
  description: The recipe's echo service, in the mesh.
  annotations:
    tailmesh.dev/service: default/echo
spec:
  type: service
  lifecycle: production
  owner: guests
`;

let product: E2eProduct;

beforeAll(() => {
  product = e2eProduct();
});

async function signIn(page: Page) {
  const enter = page.getByRole('button', { name: 'Enter' });
  // The stock apps' guest sign-in (auto sign-in may skip it).
  await Promise.race([
    enter.waitFor({ timeout: 60_000 }).then(() => enter.click()),
    page
      .getByText('Clusters', { exact: true })
      .first()
      .waitFor({ timeout: 60_000 }),
  ]);
}

describe.each(KINDS)(
  'a $kind app made by create-app and wired by the README',
  ({ kind, port }) => {
    const appDir = path.join(repoRoot, '.adoption', kind);
    const url = `http://localhost:${port}`;
    let backend: BackendProcess | undefined;
    let browser: Browser | undefined;

    beforeAll(async () => {
      const marker = path.join(appDir, '.tailmesh-adoption.json');
      if (!fs.existsSync(marker)) {
        throw new Error(
          `${appDir} is not prepared: npm test runs node test/adoption/prepare.js before the browser tests (it needs the npm registry, which this namespace cannot reach)`,
        );
      }
      // The team's own config: its clusters and tailnet, where its backend listens. 0600: tokens.
      const local = {
        app: { baseUrl: url },
        backend: { baseUrl: url, listen: { host: '127.0.0.1', port } },
        ...testbedMeshConfig(product.state),
      };
      fs.writeFileSync(
        path.join(appDir, 'app-config.local.yaml'),
        stringify(local),
        {
          mode: 0o600,
        },
      );
      // The team's own service, annotated as the README's step 5 says.
      const entities = path.join(appDir, 'examples', 'entities.yaml');
      const current = fs.readFileSync(entities, 'utf8');
      if (!current.includes('tailmesh.dev/service'))
        fs.writeFileSync(entities, `${current.trimEnd()}\n${ECHO_ENTITY}`);

      const bin = path.join(appDir, 'node_modules', '.bin', 'backstage-cli');
      backend = await startBackend({
        configPaths: [],
        port,
        logFile: path.join(repoRoot, '.adoption', `${kind}-backend.log`),
        timeoutMs: 240_000,
        app: {
          backendDir: path.join(appDir, 'packages', 'backend'),
          command: bin,
          args: ['package', 'start'],
        },
      });
      browser = await launchBrowser();
    }, 300_000);

    afterAll(async () => {
      await browser?.close();
      await backend?.stop();
    });

    it('serves the mesh page, reached from the navigation', async () => {
      const { page } = browser!;
      await page.goto(`${url}/catalog`);
      await signIn(page);
      // The nav item the plugin brings (new system) or the README's sidebar diff (legacy).
      const nav = page.getByRole('link', { name: 'Mesh' }).first();
      await nav.waitFor({ timeout: 60_000 });
      await nav.click();
      await page.waitForURL(/\/mesh$/);
      // The demo mesh's members, joined at start-up, in the Clusters card.
      for (const name of ['cluster1', 'cluster2']) {
        await page
          .getByRole('cell', { name, exact: true })
          .first()
          .waitFor({ timeout: 60_000 });
      }
      await page
        .getByRole('heading', { name: 'Membership', exact: true })
        .waitFor();
      expect(await page.getByText(/Something went wrong/i).count()).toBe(0);
      expectNoSecrets([await page.content()], product.secrets);
      await screenshot(page, `adoption-${kind}-mesh-page`);
    });

    it("shows the mesh card on the team's annotated service", async () => {
      const { page } = browser!;
      // The catalog reads the entity file on its own schedule: reload until the page has it.
      const summary = page.getByText(/served by \d+ of \d+ clusters/).first();
      const deadline = Date.now() + 120_000;
      for (;;) {
        await page.goto(`${url}/catalog/default/component/echo`);
        try {
          await summary.waitFor({ timeout: 15_000 });
          break;
        } catch (e) {
          if (Date.now() > deadline) throw e;
        }
      }
      expect(await page.getByText(/Something went wrong/i).count()).toBe(0);
      expectNoSecrets([await page.content()], product.secrets);
      await screenshot(page, `adoption-${kind}-entity-card`);
    });

    it('offers the clusters in the Join template, through the cluster picker', async () => {
      const { page } = browser!;
      // The templates the README registered (the catalog may still be reading them).
      const title = page.getByRole('heading', { name: 'Join cluster to mesh' });
      const deadline = Date.now() + 120_000;
      for (;;) {
        await page.goto(`${url}/create`);
        try {
          await title.waitFor({ timeout: 15_000 });
          break;
        } catch (e) {
          if (Date.now() > deadline) throw e;
        }
      }
      // Only the registered MeshClusterPicker field lists the clusters with their membership.
      const option = await openJoinClusterPicker(page);
      await option('cluster3').waitFor({ timeout: 60_000 });
      expect(await option('cluster1').textContent()).toMatch(/member/);
      await screenshot(page, `adoption-${kind}-cluster-picker`);
      await page.keyboard.press('Escape');
    });
  },
);
