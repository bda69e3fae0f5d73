/**
 * A deterministic write history for copy tests: commit i changes a little everywhere (puts of
 * varied sizes including overflow values, deletes that free pages for reuse, nested buckets,
 * sequences) and records i under meta/n. `expected(n)` replays the first n commits in memory, so a
 * copy that says it holds commit n can be compared with exactly that state.
 */
import type { DB, Tx } from '../../src/bolt/index.ts';

export type State = Map<string, string>;

function valueFor(i: number): string {
  const size = i % 97 === 0 ? 9000 : i % 13 === 0 ? 1500 : 10 + (i % 50);
  return `v${i}-`.padEnd(size, String.fromCharCode(97 + (i % 26)));
}

/** The changes commit i makes, as [bucket path, key, value | null (delete)]. */
export function changes(i: number): Array<[string, string, string | null]> {
  const out: Array<[string, string, string | null]> = [];
  out.push(['data', `k${String(i).padStart(7, '0')}`, valueFor(i)]);
  if (i % 3 === 0 && i > 7) out.push(['data', `k${String(i - 7).padStart(7, '0')}`, null]);
  if (i % 5 === 0) out.push(['data/nested', `n${i % 40}`, `nested-${i}`]);
  out.push(['meta', 'n', String(i)]);
  return out;
}

export function applyTo(tx: Tx, i: number): void {
  for (const [path, k, v] of changes(i)) {
    const names = path.split('/');
    let b = tx.createBucketIfNotExists(names[0]!);
    for (const n of names.slice(1)) b = b.createBucketIfNotExists(n);
    if (v === null) b.delete(k);
    else b.put(k, v);
  }
  tx.bucket('meta')!.setSequence(i);
}

export function expected(n: number): State {
  const s: State = new Map();
  for (let i = 1; i <= n; i++) {
    for (const [path, k, v] of changes(i)) {
      if (v === null) s.delete(`${path}:${k}`);
      else s.set(`${path}:${k}`, v);
    }
  }
  return s;
}

/** Everything in the file as path:key -> value, plus the commit number it says it holds. */
export function stateOf(db: DB): { n: number; state: State; seq: number } {
  return db.view((tx) => {
    const state: State = new Map();
    const walk = (path: string, b: NonNullable<ReturnType<Tx['bucket']>>): void => {
      b.forEach((k, v) => {
        const key = Buffer.from(k).toString();
        if (v === null) walk(`${path}/${key}`, b.bucket(k)!);
        else state.set(`${path}:${key}`, Buffer.from(v).toString());
      });
    };
    tx.forEach((name, b) => walk(Buffer.from(name).toString(), b));
    const n = Number(state.get('meta:n') ?? '0');
    const seq = tx.bucket('meta')?.sequence ?? 0;
    return { n, state, seq };
  });
}

/** Commits history entries from `from` on, yielding to the event loop between commits, until stopped. */
export function runWriter(db: DB, from: number): { stop: () => Promise<number> } {
  let stopped = false;
  let i = from;
  const done = (async () => {
    while (!stopped) {
      const n = i;
      await db.updateAsync((tx) => applyTo(tx, n));
      i++;
      await new Promise<void>((r) => setImmediate(r));
    }
    return i - 1;
  })();
  return {
    stop: async () => {
      stopped = true;
      return done;
    },
  };
}
