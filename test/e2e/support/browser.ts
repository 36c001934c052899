import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BrowserContext, chromium, Locator, Page } from 'playwright-core';

/** Debian's Chromium, installed by scripts/setup.sh; the tests never download a browser. */
export const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export const screenshotDir = path.resolve(__dirname, '..', 'screenshots');

export interface Browser {
  context: BrowserContext;
  page: Page;
  close(): Promise<void>;
}

/** Chromium with a fresh profile, so no state of an earlier run (cookies, storage) carries over. */
export async function launchBrowser(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: run scripts/setup.sh, which installs Debian's chromium package`,
    );
  }
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'tailmesh-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1440, height: 1000 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Saves a screenshot of an element, or of the whole page, as screenshots/<name>.png. Backstage
 * scrolls its content inside the page, not the document, so for a whole page the viewport is
 * stretched to the tallest scrolling content first. Transitions are finished first (menus fade in).
 */
export async function screenshot(target: Page | Locator, name: string) {
  fs.mkdirSync(screenshotDir, { recursive: true });
  const file = path.join(screenshotDir, `${name}.png`);
  if (!('goto' in target)) {
    await target.screenshot({ path: file, animations: 'disabled' });
    return file;
  }
  const viewport = target.viewportSize()!;
  const contentHeight = await target.evaluate(() =>
    Math.max(
      ...Array.from(document.querySelectorAll('body, body *')).map(
        e => e.scrollHeight,
      ),
    ),
  );
  await target.setViewportSize({
    width: viewport.width,
    height: Math.min(Math.max(contentHeight, viewport.height), 6000),
  });
  try {
    await target.screenshot({ path: file, animations: 'disabled' });
  } finally {
    await target.setViewportSize(viewport);
  }
  return file;
}

/**
 * On a Create page that lists the "Join cluster to mesh" template: chooses it and opens the
 * form's cluster field (the `MeshClusterPicker`). Returns the picker's option for a cluster.
 */
export async function openJoinClusterPicker(
  page: Page,
): Promise<(cluster: string) => Locator> {
  await page
    .getByRole('heading', { name: 'Join cluster to mesh' })
    .locator('xpath=following::button[normalize-space()="Choose"][1]')
    .click();
  await page.getByRole('button', { name: 'Cluster' }).click();
  return (cluster: string) =>
    page.getByRole('option', { name: new RegExp(`^${cluster}\\b`) });
}
