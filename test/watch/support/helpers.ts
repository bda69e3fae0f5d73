/** Small async helpers for reading watch responses in tests without risking a hang. */
import type { WatchResponse } from '../../../src/watch/types.ts';

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms}ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** Reads exactly n responses (fails on timeout or early end). */
export async function take(it: AsyncIterator<WatchResponse>, n: number, ms = 2000): Promise<WatchResponse[]> {
  const out: WatchResponse[] = [];
  while (out.length < n) {
    const r = await withTimeout(it.next(), ms, `response ${out.length + 1}/${n}`);
    if (r.done === true) throw new Error(`iteration ended after ${out.length}/${n} responses`);
    out.push(r.value);
  }
  return out;
}

/** Reads until `stop` returns true for a response (inclusive) or iteration ends. */
export async function readUntil(
  it: AsyncIterator<WatchResponse>,
  stop: (r: WatchResponse) => boolean,
  ms = 2000,
): Promise<{ responses: WatchResponse[]; ended: boolean }> {
  const responses: WatchResponse[] = [];
  for (;;) {
    const r = await withTimeout(it.next(), ms, `response after ${responses.length}`);
    if (r.done === true) return { responses, ended: true };
    responses.push(r.value);
    if (stop(r.value)) return { responses, ended: false };
  }
}

/** Resolves once the event loop has run pending setImmediate callbacks (catch-up steps). */
export function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export const str = (b: Uint8Array): string => Buffer.from(b).toString('utf8');
