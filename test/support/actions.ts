import { LoggerService } from '@backstage/backend-plugin-api';
import { JsonObject } from '@backstage/types';
import { TemplateAction } from '@backstage/plugin-scaffolder-node';
import { createMockActionContext } from '@backstage/plugin-scaffolder-node-test-utils';

/** A logger that keeps every line (message and fields), so tests can read and scan them. */
export function capturingLogger(lines: string[] = []): LoggerService {
  const log = (level: string) => (message: string, meta?: unknown) => {
    lines.push(`${level} ${message}${meta ? ` ${JSON.stringify(meta)}` : ''}`);
  };
  const logger: LoggerService = {
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
    debug: log('debug'),
    child: () => logger,
  };
  return logger;
}

export interface ActionRun {
  output: Record<string, unknown>;
  logs: string[];
  /** Set by `settled: true` runs whose handler threw. */
  error?: Error;
}

/** Runs one action the way the scaffolder does, with a real logger capture and real checkpoints. */
export async function runAction(
  action: TemplateAction<any, any, any>,
  input: JsonObject,
  opts: {
    dryRun?: boolean;
    secrets?: Record<string, string>;
    checkpoints?: Map<string, unknown>;
    signal?: AbortSignal;
    /** Resolve with the error (and what was output before it) instead of rejecting. */
    settled?: boolean;
  } = {},
): Promise<ActionRun> {
  const logs: string[] = [];
  const output: Record<string, unknown> = {};
  const checkpoints = opts.checkpoints ?? new Map<string, unknown>();
  const ctx = {
    ...createMockActionContext({
      input,
      logger: capturingLogger(logs),
      secrets: opts.secrets,
    }),
    isDryRun: opts.dryRun ?? false,
    signal: opts.signal,
    output: (name: string, value: unknown) => {
      output[name] = value;
    },
    // Like the scaffolder's: a key that already completed returns its stored result.
    async checkpoint<T>({
      key,
      fn,
    }: {
      key: string;
      fn: () => Promise<T> | T;
    }): Promise<T> {
      if (checkpoints.has(key)) return checkpoints.get(key) as T;
      const value = await fn();
      checkpoints.set(key, JSON.parse(JSON.stringify(value ?? null)));
      return value;
    },
  };
  try {
    await action.handler(ctx as never);
  } catch (e) {
    if (!opts.settled) throw e;
    return {
      output,
      logs,
      error: e instanceof Error ? e : new Error(String(e)),
    };
  }
  return { output, logs };
}

/** Fails with the offending line if any secret value appears in any of `texts`. */
export function expectNoSecrets(texts: string[], secrets: string[]) {
  for (const secret of secrets.filter(Boolean)) {
    for (const text of texts) {
      if (text.includes(secret))
        throw new Error(`secret value leaked into: ${text.slice(0, 200)}`);
    }
  }
}
