import { BenchOptions } from './options';

/**
 * What run.ts hands to benchInTestbed.ts: the parsed options and where the test bed and the
 * scratch files are. Passed in an environment variable; it holds no secret.
 */
export interface BenchJob {
  options: BenchOptions;
  stateDir: string;
  workDir: string;
  startedAt: string;
  loadAtStart: number[];
}

export const BENCH_JOB_ENV = 'TAILMESH_BENCH_JOB';
