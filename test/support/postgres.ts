import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * A throwaway PostgreSQL server for the integration tests, so the plugins' database code runs on
 * PostgreSQL as well as SQLite. It listens on 127.0.0.1 only (the tests' network namespace has
 * nothing else), trusts loopback connections, keeps its data in a temporary directory with fsync
 * off, and is stopped and deleted by the global teardown.
 *
 * Backstage's `TestDatabases` finds it through `BACKSTAGE_TEST_DATABASE_POSTGRES<major>_CONNECTION_STRING`;
 * {@link POSTGRES_ID_ENV} names which id that is, and {@link POSTGRES_ERROR_ENV} why it could not
 * start, so the tests that need it fail with the reason instead of skipping PostgreSQL.
 */
export const POSTGRES_ID_ENV = 'TAILMESH_TEST_POSTGRES_ID';
export const POSTGRES_ERROR_ENV = 'TAILMESH_TEST_POSTGRES_ERROR';
const POSTGRES_DIR_ENV = 'TAILMESH_TEST_POSTGRES_DIR';

/** Postgres refuses to run as root; as root it runs as this user. */
const POSTGRES_USER = 'postgres';
const STATE_FILE = 'tailmesh-postgres.json';

/** How to run the server's binaries and where it lives: written next to the data for the teardown. */
interface PostgresState {
  bindir: string;
  dataDir: string;
  /** The command prefix that runs a binary as the server's (unprivileged) user. */
  asUser: string[];
}

export interface RunningPostgres {
  /** `postgresql://postgres@127.0.0.1:<port>/postgres`; no password: loopback is trusted. */
  connectionString: string;
  /** `POSTGRES_<major>`, the `TestDatabases` id of this server. */
  testDatabaseId: string;
  /** The directory holding the data, the socket and the log; removed by {@link stopPostgres}. */
  dir: string;
}

function versionOf(dir: string): number {
  return Number(/^(\d+)/.exec(path.basename(dir))?.[1] ?? 0);
}

/** The server binaries: Debian's versioned directories (newest first), else `initdb` on PATH. */
export function findPostgresBindir(): string {
  const debian = '/usr/lib/postgresql';
  const candidates = fs.existsSync(debian)
    ? fs
        .readdirSync(debian)
        .map(v => path.join(debian, v))
        .sort((a, b) => versionOf(b) - versionOf(a))
        .map(d => path.join(d, 'bin'))
    : [];
  candidates.push(
    ...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean),
  );
  const found = candidates.find(d => fs.existsSync(path.join(d, 'initdb')));
  if (!found) {
    throw new Error(
      'PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in /usr/lib/postgresql/*/bin or on PATH; scripts/setup.sh installs the Debian package postgresql',
    );
  }
  return found;
}

/**
 * The command prefix that runs postgres unprivileged. As real root: the `postgres` user through
 * runuser. As root of a user namespace that maps only the caller (scripts/test.sh as a normal
 * user), other uids cannot be switched to, so a nested user namespace maps the caller to a
 * non-zero uid, which postgres accepts. As a normal user: no prefix.
 */
async function unprivilegedPrefix(): Promise<{
  asUser: string[];
  owner?: { uid: number; gid: number };
}> {
  if (process.getuid?.() !== 0) return { asUser: [] };
  const uidMap = fs.readFileSync('/proc/self/uid_map', 'utf8').trim();
  const fullRoot = /^0\s+0\s+4294967295$/.test(uidMap);
  if (!fullRoot) {
    return {
      asUser: ['unshare', '--user', '--map-user=1000', '--map-group=1000'],
    };
  }
  const { stdout: uid } = await run('id', ['-u', POSTGRES_USER]).catch(() => {
    throw new Error(
      `running as root and there is no "${POSTGRES_USER}" user to run PostgreSQL as (postgres refuses root); install the Debian package postgresql, which creates it`,
    );
  });
  const { stdout: gid } = await run('id', ['-g', POSTGRES_USER]);
  return {
    asUser: ['runuser', '-u', POSTGRES_USER, '--'],
    owner: { uid: Number(uid.trim()), gid: Number(gid.trim()) },
  };
}

async function runAs(
  state: PostgresState,
  binary: string,
  args: string[],
): Promise<string> {
  const [cmd, ...rest] = [
    ...state.asUser,
    path.join(state.bindir, binary),
    ...args,
  ];
  try {
    const { stdout } = await run(cmd, rest, {
      // The server's children must not inherit the tests' environment (tokens in CI variables).
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        LANG: 'C',
        LC_ALL: 'C',
      },
      timeout: 60_000,
    });
    return stdout;
  } catch (e) {
    const { stderr, message } = e as { stderr?: string; message: string };
    throw new Error(
      `${binary} failed: ${(stderr || message).trim().slice(0, 2000)}`,
    );
  }
}

/** A port nobody listens on right now, on 127.0.0.1. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** initdb, then the server on a free loopback port; resolves once it accepts connections. */
export async function startPostgres(): Promise<RunningPostgres> {
  const bindir = findPostgresBindir();
  const { asUser, owner } = await unprivilegedPrefix();
  // Not under the test bed's state dir: that is root's 0700 directory, which postgres's user
  // cannot enter.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tailmesh-postgres-'));
  const dataDir = path.join(dir, 'data');
  const state: PostgresState = { bindir, dataDir, asUser };
  fs.writeFileSync(path.join(dir, STATE_FILE), JSON.stringify(state));
  try {
    if (owner) fs.chownSync(dir, owner.uid, owner.gid);
    await runAs(state, 'initdb', [
      '--pgdata',
      dataDir,
      '--username',
      POSTGRES_USER,
      // Only loopback entries exist in a fresh pg_hba.conf, and the server listens nowhere else.
      '--auth',
      'trust',
      '--encoding',
      'UTF8',
      '--locale',
      'C',
      '--no-sync',
      '--no-instructions',
    ]);
    let lastError: unknown;
    // The free port can be taken between the probe and the server's bind: try another.
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      const options = [
        '-c listen_addresses=127.0.0.1',
        `-c port=${port}`,
        `-c unix_socket_directories=${dir}`,
        '-c fsync=off',
        '-c synchronous_commit=off',
        '-c full_page_writes=off',
        '-c max_connections=200',
        '-c shared_buffers=32MB',
      ].join(' ');
      try {
        await runAs(state, 'pg_ctl', [
          'start',
          '--pgdata',
          dataDir,
          '--wait',
          '--timeout',
          '60',
          '--log',
          path.join(dir, 'postgres.log'),
          '--options',
          options,
        ]);
        const [major] = (await runAs(state, 'postgres', ['--version'])).match(
          /\d+/,
        ) ?? ['0'];
        return {
          connectionString: `postgresql://${POSTGRES_USER}@127.0.0.1:${port}/postgres`,
          testDatabaseId: `POSTGRES_${major}`,
          dir,
        };
      } catch (e) {
        lastError = e;
      }
    }
    const log = fs.existsSync(path.join(dir, 'postgres.log'))
      ? fs.readFileSync(path.join(dir, 'postgres.log'), 'utf8').slice(-2000)
      : '';
    throw new Error(
      `${lastError instanceof Error ? lastError.message : String(lastError)}${log ? `\nserver log:\n${log}` : ''}`,
    );
  } catch (e) {
    await stopPostgres(dir);
    throw e;
  }
}

/** Stops the server (fast shutdown: the data is thrown away anyway) and deletes its directory. */
export async function stopPostgres(dir: string): Promise<void> {
  const file = path.join(dir, STATE_FILE);
  if (fs.existsSync(file)) {
    const state = JSON.parse(fs.readFileSync(file, 'utf8')) as PostgresState;
    if (fs.existsSync(path.join(state.dataDir, 'postmaster.pid'))) {
      await runAs(state, 'pg_ctl', [
        'stop',
        '--pgdata',
        state.dataDir,
        '--mode',
        'fast',
        '--wait',
      ]);
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

/**
 * For the global setup: starts the server and exports its connection string the way
 * `TestDatabases` reads it. A failure is recorded, not thrown, so only the tests that need
 * PostgreSQL fail (with this reason), not every integration test.
 */
export async function startTestPostgres(): Promise<string> {
  try {
    const pg = await startPostgres();
    process.env[POSTGRES_DIR_ENV] = pg.dir;
    process.env[POSTGRES_ID_ENV] = pg.testDatabaseId;
    process.env[
      `BACKSTAGE_TEST_DATABASE_${pg.testDatabaseId.replace('_', '')}_CONNECTION_STRING`
    ] = pg.connectionString;
    return `PostgreSQL (${pg.testDatabaseId}) on ${new URL(pg.connectionString).host}`;
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    process.env[POSTGRES_ERROR_ENV] = reason;
    return `PostgreSQL did NOT start, the tests that need it will fail: ${reason}`;
  }
}

/** For the global teardown. */
export async function stopTestPostgres(): Promise<void> {
  const dir = process.env[POSTGRES_DIR_ENV];
  if (dir) await stopPostgres(dir);
}

/**
 * The `TestDatabases` id of the server the global setup started; throws with the reason it did
 * not start, so a test file that asks for it fails instead of silently running on SQLite only.
 */
export function testPostgresId(): 'POSTGRES_15' {
  const id = process.env[POSTGRES_ID_ENV];
  if (!id) {
    throw new Error(
      `No test PostgreSQL server: ${process.env[POSTGRES_ERROR_ENV] ?? 'run the integration tests through test/jest.config.js, whose global setup starts it'}`,
    );
  }
  // TestDatabaseId is a closed union; any installed major maps onto one of its POSTGRES_* ids.
  return id as 'POSTGRES_15';
}
