import { dropQuietly, isThenable } from './callback.ts';
import { BoltError } from './errors.ts';
import type { Tx } from './tx.ts';

type BatchCall = { fn: (tx: Tx) => unknown; resolve: (v: unknown) => void; reject: (e: unknown) => void };

/** Runs a batch callback, refusing (and quietly dropping) a promise it returns. */
function callBatchFn(fn: (tx: Tx) => unknown, tx: Tx): unknown {
  const r = fn(tx);
  if (isThenable(r)) {
    dropQuietly(r);
    throw new BoltError('ERR_INVALID_OPTION', 'batch() callbacks must be synchronous');
  }
  return r;
}

/**
 * Group commit (bbolt's Batch): calls made close together share one write transaction and one
 * fsync. A batch runs when it holds maxSize calls, or after delayMs (0: at the end of the current
 * event-loop turn). Commits go through `run` (the DB's updateAsync), so batches queue behind other
 * async writers.
 * @internal
 */
export class Batcher {
  private calls: BatchCall[] = [];
  private timer: NodeJS.Immediate | NodeJS.Timeout | null = null;

  constructor(
    private readonly maxSize: number,
    private readonly delayMs: number,
    private readonly run: <T>(fn: (tx: Tx) => T) => Promise<T>,
  ) {}

  /** Queue fn; the promise settles with fn's result once its batch is durable. */
  add<T>(fn: (tx: Tx) => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.calls.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (this.calls.length >= this.maxSize) this.flush();
      else if (!this.timer) {
        this.timer = this.delayMs > 0 ? setTimeout(() => this.flush(), this.delayMs) : setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    if (this.timer) {
      clearTimeout(this.timer as NodeJS.Timeout);
      clearImmediate(this.timer as NodeJS.Immediate);
      this.timer = null;
    }
    const calls = this.calls;
    this.calls = [];
    if (calls.length > 0) void this.runBatch(calls);
  }

  /**
   * fn may run more than once: if one call throws, the batch is retried without it and the failing
   * call runs alone, so the others still commit.
   */
  private async runBatch(calls: BatchCall[]): Promise<void> {
    let pending = calls;
    while (pending.length > 0) {
      let failed = -1;
      let failure: unknown;
      const results: unknown[] = [];
      try {
        await this.run((tx) => {
          for (let i = 0; i < pending.length; i++) {
            try {
              results.push(callBatchFn(pending[i]!.fn, tx));
            } catch (err) {
              failed = i;
              failure = err;
              throw err;
            }
          }
        });
      } catch (err) {
        if (failed < 0) {
          // The commit itself failed: every call in it failed.
          for (const c of pending) c.reject(err);
          return;
        }
        const bad = pending[failed]!;
        pending = pending.filter((_, i) => i !== failed);
        // Run the failing call alone so its own error (or success) is what its caller sees.
        try {
          bad.resolve(await this.run((tx) => callBatchFn(bad.fn, tx)));
        } catch (soloErr) {
          bad.reject(soloErr ?? failure);
        }
        continue;
      }
      pending.forEach((c, i) => c.resolve(results[i]));
      return;
    }
  }
}
