/**
 * The backend under test, in its own process so its memory is its own and the load generator does
 * not share its event loop: a real Backstage backend (`createBackend`) with the mesh backend and
 * the Kubernetes plugin side by side. Driven over IPC by backendSession.ts.
 */
import { createBackend } from '@backstage/backend-defaults';
import {
  coreServices,
  createServiceFactory,
} from '@backstage/backend-plugin-api';
import { ConfigReader } from '@backstage/config';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import kubernetesPlugin from '@backstage/plugin-kubernetes-backend';
import meshPlugin from '@tailmesh/plugin-mesh-backend';
import { FromBackend, MemoryReading, ToBackend } from './backendProtocol';

type Backend = ReturnType<typeof createBackend>;
let backend: Backend | undefined;

function send(message: FromBackend) {
  process.send?.(message);
}

function memory(): MemoryReading {
  // Started with --expose-gc: without a full collection, heap figures are mostly garbage.
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  return {
    rssBytes: m.rss,
    heapUsedBytes: m.heapUsed,
    externalBytes: m.external,
  };
}

async function start(message: Extract<ToBackend, { type: 'start' }>) {
  backend = createBackend();
  // The app-config comes over IPC instead of files, so no token is ever written to disk.
  backend.add(
    createServiceFactory({
      service: coreServices.rootConfig,
      deps: {},
      factory: () => new ConfigReader(message.config),
    }),
  );
  backend.add(catalogServiceMock.factory({ entities: message.entities }));
  backend.add(meshPlugin);
  backend.add(kubernetesPlugin);
  send({ type: 'starting', at: Date.now() });
  await backend.start();
  send({ type: 'started', at: Date.now() });
}

async function handle(message: ToBackend) {
  try {
    switch (message.type) {
      case 'start':
        await start(message);
        return;
      case 'memory':
        send({ type: 'memory', memory: memory() });
        return;
      case 'cpu': {
        const { user, system } = process.cpuUsage();
        send({ type: 'cpu', micros: user + system });
        return;
      }
      case 'stop':
        await backend?.stop();
        send({ type: 'stopped' });
        process.disconnect?.();
        return;
      default:
        throw new Error(`unknown message ${JSON.stringify(message)}`);
    }
  } catch (e) {
    send({
      type: 'failed',
      error: e instanceof Error ? (e.stack ?? e.message) : String(e),
    });
  }
}

process.on('message', message => void handle(message as ToBackend));
// The bench owns this process: when it goes away (even killed), so does the backend.
process.on('disconnect', () => process.exit(0));
send({ type: 'loaded', memory: memory() });
