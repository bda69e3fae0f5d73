import type { Parameters } from 'fast-check';

/**
 * fast-check parameters for a property run `numRuns` times whose failure can be replayed: set
 * FC_SEED and FC_PATH to the values fast-check printed, and the run replays only that case and stops
 * at it. Differential tests against etcd share this, since their failures are costly to find again.
 */
export function replayableRuns<T>(numRuns: number): Parameters<T> {
  const seed = process.env.FC_SEED;
  return {
    numRuns,
    includeErrorInReport: true,
    ...(seed ? { seed: Number(seed), path: process.env.FC_PATH, endOnFailure: true } : {}),
  };
}
