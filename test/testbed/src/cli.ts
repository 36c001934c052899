/**
 * `npm run testbed -- <command>`: real Kubernetes control planes on loopback for tests and the
 * local product. See the README's "Test bed" section.
 */
import { parseArgs } from 'node:util';
import { defaultBasePort, defaultStateDir, maxClusters } from './layout';
import { processAlive, readState } from './state';
import {
  controlTestbed,
  runningTestbed,
  startTestbed,
  stopTestbed,
} from './testbed';

const usage = `Usage: npm run testbed -- <command> [options]

Commands:
  up       start the test bed (fresh state) and print where its kubeconfigs are
  down     stop exactly the processes the test bed started
  status   print the clusters and whether each apiserver runs (exit 1 when not running)
  stop-apiserver  --cluster NAME   stop one cluster's apiserver (outage drills)
  start-apiserver --cluster NAME   start it again

Options:
  --clusters N      clusters to start with up (1..${maxClusters}, default 3)
  --state-dir DIR   where state, logs and kubeconfigs live (default .testbed/run)
  --base-port PORT  first of the loopback ports the test bed uses (default ${defaultBasePort})
  --cluster NAME    the cluster for stop-apiserver / start-apiserver
`;

function fail(message: string): never {
  process.stderr.write(`testbed: ${message}\n`);
  process.exit(2);
}

async function main() {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        clusters: { type: 'string', default: '3' },
        'state-dir': { type: 'string', default: defaultStateDir },
        'base-port': { type: 'string', default: String(defaultBasePort) },
        cluster: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    fail(`${(e as Error).message}\n\n${usage}`);
  }
  const { values, positionals } = parsed;
  const command = positionals[0];
  if (values.help || !command) {
    process.stdout.write(usage);
    return;
  }
  const stateDir = values['state-dir'];

  switch (command) {
    case 'up': {
      const clusters = Number(values.clusters);
      const basePort = Number(values['base-port']);
      if (!Number.isInteger(basePort) || basePort < 1024 || basePort > 65000) {
        fail(
          `--base-port must be a port from 1024 to 65000, got ${values['base-port']}`,
        );
      }
      const started = Date.now();
      const state = await startTestbed({
        stateDir,
        clusters,
        basePort,
        onProgress: line => process.stdout.write(`  ${line}\n`),
      }).catch(e => fail((e as Error).message));
      process.stdout.write(
        `\nTest bed ready in ${((Date.now() - started) / 1000).toFixed(1)} s:\n`,
      );
      for (const c of state.clusters) {
        process.stdout.write(
          `  ${c.name}  ${c.server}  network=${c.network} region=${c.region} zones=${c.zones.join(',')}\n` +
            `           kubectl --kubeconfig ${c.kubeconfigPath} get nodes\n`,
        );
      }
      process.stdout.write(
        `  Tailscale API stand-in: ${state.tailscaleApi?.url} (OAuth client in ${state.tailscaleApi?.credentialsPath})\n` +
          `  tailnet: ${state.tailnet}\n  stop with: npm run testbed -- down${stateDir === defaultStateDir ? '' : ` --state-dir ${stateDir}`}\n`,
      );
      return;
    }
    case 'down': {
      if (!readState(stateDir)) fail(`no test bed state in ${stateDir}`);
      const killed = await stopTestbed(stateDir);
      process.stdout.write(
        killed.length
          ? `stopped; had to kill pids ${killed.join(', ')}\n`
          : 'stopped\n',
      );
      return;
    }
    case 'status': {
      const state = readState(stateDir);
      if (!state) fail(`no test bed state in ${stateDir}`);
      const running = runningTestbed(stateDir) !== undefined;
      process.stdout.write(`phase: ${running ? state.phase : 'not running'}\n`);
      for (const c of state.clusters) {
        process.stdout.write(
          `  ${c.name}  ${c.server}  apiserver ${running && c.apiserverRunning ? 'running' : 'stopped'}  ${c.kubeconfigPath}\n`,
        );
      }
      for (const [name, pid] of Object.entries(state.pids)) {
        process.stdout.write(
          `  pid ${pid} ${name} ${processAlive(pid) ? 'alive' : 'gone'}\n`,
        );
      }
      if (!running) process.exitCode = 1;
      return;
    }
    case 'stop-apiserver':
    case 'start-apiserver': {
      if (!values.cluster) fail(`${command} needs --cluster NAME`);
      await controlTestbed(stateDir, command, values.cluster).catch(e =>
        fail((e as Error).message),
      );
      process.stdout.write(`${command} ${values.cluster}: done\n`);
      return;
    }
    default:
      fail(`unknown command "${command}"\n\n${usage}`);
  }
}

void main();
