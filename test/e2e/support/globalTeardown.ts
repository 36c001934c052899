import fs from 'node:fs';
import { ProductEnvironment } from '../../product/productEnvironment';

export default async function globalTeardown() {
  const { env, dir } =
    (
      globalThis as {
        tailmeshE2e?: { env: ProductEnvironment; dir: string };
      }
    ).tailmeshE2e ?? {};
  await env?.stop();
  // Kubeconfigs, tokens, the generated config and the mesh root CA of the run go with it.
  if (dir && !process.env.TAILMESH_KEEP_TESTBED) {
    fs.rmSync(dir, { recursive: true, force: true });
  } else if (dir) {
    process.stdout.write(`\ne2e state kept in ${dir}\n`);
  }
}
