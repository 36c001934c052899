import { setTimeout as sleep } from 'node:timers/promises';

/**
 * fetch, retried once for a GET whose pooled keep-alive connection the server closed just as it
 * was reused (undici reports "other side closed"): safe, since a GET changes nothing.
 */
async function fetchRetryingStaleConnection(
  url: string,
  init: RequestInit,
): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (e) {
    const code = ((e as Error).cause as { code?: string } | undefined)?.code;
    if ((init.method ?? 'GET') !== 'GET' || code !== 'UND_ERR_SOCKET') throw e;
    return fetch(url, init);
  }
}

export interface TaskResult {
  id: string;
  status: 'completed' | 'failed' | 'cancelled';
  ms: number;
  /** The task's log lines (the scaffolder redacts task secrets from them). */
  log: string[];
  /** The final status of each step that ran, by step id (`completed`, `failed`, `skipped`). */
  steps: Record<string, string>;
}

/**
 * The local product's REST API as the guest user signs in to it: how `npm start` and the browser
 * tests drive the scaffolder and read the mesh backend without a browser.
 */
export class BackstageClient {
  private constructor(
    readonly baseUrl: string,
    /** The signed-in user's Backstage token, as the app sends it (the benches load with it). */
    readonly token: string,
  ) {}

  /** Signs in with the guest provider, the way the app's sign-in page does: reads the mesh. */
  static signInAsGuest(baseUrl: string): Promise<BackstageClient> {
    return BackstageClient.signIn(baseUrl, 'guest');
  }

  /** Signs in as the local product's mesh admin ("Enter as mesh admin"): may join and leave. */
  static signInAsMeshAdmin(baseUrl: string): Promise<BackstageClient> {
    return BackstageClient.signIn(baseUrl, 'local-admin');
  }

  private static async signIn(
    baseUrl: string,
    provider: 'guest' | 'local-admin',
  ): Promise<BackstageClient> {
    const res = await fetchRetryingStaleConnection(
      `${baseUrl}/api/auth/${provider}/refresh`,
      {
        headers: { 'x-requested-with': 'XMLHttpRequest' },
      },
    );
    if (!res.ok) {
      throw new Error(
        `${provider} sign-in at ${baseUrl} failed: HTTP ${res.status} ${await res.text()}`,
      );
    }
    const body = (await res.json()) as {
      backstageIdentity?: { token?: string };
    };
    const token = body.backstageIdentity?.token;
    if (!token) throw new Error(`${provider} sign-in answered without a token`);
    return new BackstageClient(baseUrl, token);
  }

  async request<T>(method: 'GET' | 'POST', path: string, body?: unknown) {
    const res = await fetchRetryingStaleConnection(`${this.baseUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) {
      const error = new Error(
        `${method} ${path}: HTTP ${res.status} ${text.slice(0, 500)}`,
      );
      Object.assign(error, { status: res.status });
      throw error;
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  /** Waits until the catalog has processed an entity (file locations are read at start-up). */
  async waitForEntity(
    ref: string,
    {
      timeoutMs = 120_000,
      signal,
    }: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<void> {
    const [kind, rest] = ref.split(':');
    const [namespace, name] = rest.split('/');
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      signal?.throwIfAborted();
      try {
        await this.get(
          `/api/catalog/entities/by-name/${kind}/${namespace}/${name}`,
        );
        return;
      } catch (e) {
        if ((e as { status?: number }).status !== 404) throw e;
      }
      if (Date.now() > deadline) {
        throw new Error(`the catalog has no ${ref} after ${timeoutMs} ms`);
      }
      await sleep(1000);
    }
  }

  /** Runs a template through the scaffolder, as the Create page does, and waits for its end. */
  async runTemplate(
    templateRef: string,
    values: Record<string, unknown>,
    opts: {
      timeoutMs?: number;
      onLog?: (line: string) => void;
      /** Aborting stops the waiting (the task itself runs on in the backend). */
      signal?: AbortSignal;
    } = {},
  ): Promise<TaskResult> {
    const started = Date.now();
    const { id } = await this.request<{ id: string }>(
      'POST',
      '/api/scaffolder/v2/tasks',
      { templateRef, values },
    );
    const deadline = started + (opts.timeoutMs ?? 600_000);
    let shown = 0;
    for (;;) {
      opts.signal?.throwIfAborted();
      const task = await this.get<{ status: string }>(
        `/api/scaffolder/v2/tasks/${id}`,
      );
      const { log, steps } = await this.taskEvents(id);
      for (; shown < log.length; shown++) opts.onLog?.(log[shown]);
      if (['completed', 'failed', 'cancelled'].includes(task.status)) {
        return {
          id,
          status: task.status as TaskResult['status'],
          ms: Date.now() - started,
          log,
          steps,
        };
      }
      if (Date.now() > deadline) {
        throw new Error(
          `task ${id} (${templateRef}) still ${task.status} after ${opts.timeoutMs ?? 600_000} ms`,
        );
      }
      await sleep(1000);
    }
  }

  async taskLog(id: string): Promise<string[]> {
    return (await this.taskEvents(id)).log;
  }

  /** A task's log lines and the last status each step reported. */
  async taskEvents(id: string): Promise<Pick<TaskResult, 'log' | 'steps'>> {
    const events = await this.get<
      Array<{
        type: string;
        body: { message?: string; stepId?: string; status?: string };
      }>
    >(`/api/scaffolder/v2/tasks/${id}/events`);
    const steps: Record<string, string> = {};
    for (const e of events) {
      if (e.body.stepId && e.body.status) steps[e.body.stepId] = e.body.status;
    }
    return {
      log: events
        .filter(e => e.type === 'log' && e.body.message)
        .map(e => e.body.message!),
      steps,
    };
  }
}
