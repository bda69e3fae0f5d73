import { BoltError } from './errors.ts';

/** Checks on the callbacks callers hand to view/update/updateAsync/batch. */

export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (
    (typeof v === 'object' || typeof v === 'function') &&
    v !== null &&
    typeof (v as { then?: unknown }).then === 'function'
  );
}

/** A promise we refuse: observe its settling so a later rejection cannot crash the process. */
export function dropQuietly(v: PromiseLike<unknown>): void {
  Promise.resolve(v).catch(() => {});
}

const AsyncFunction = (async () => {}).constructor;

export function checkCallback(fn: unknown, what: string, sync: boolean): void {
  if (typeof fn !== 'function') {
    throw new BoltError(
      'ERR_INVALID_ARGUMENT',
      `${what}: the callback must be a function, got ${fn === null ? 'null' : typeof fn}`,
    );
  }
  if (sync && fn instanceof AsyncFunction) {
    throw new BoltError(
      'ERR_INVALID_OPTION',
      `${what}: the callback must be synchronous; use updateAsync() for async work`,
    );
  }
}
