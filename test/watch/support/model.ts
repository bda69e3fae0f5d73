/**
 * The model behind the watch-guarantee property tests, shared by the fake-source and real-store
 * runs. Random writes, txns and compactions go through a driver while watchers (standalone and on one shared stream) start at random
 * revisions with random ranges, filters and prevKv; their consumers read at random moments (or
 * pause), request progress, and disconnect + resume from the last delivered revision + 1, as a
 * client would. At the end every watcher is drained to a bookmark at the current revision and its
 * whole response sequence is checked against the replayed history.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { WatchHub } from '../../../src/watch/hub.ts';
import type { WatchFilter, WatchRequest, WatchResponse, WatchStream } from '../../../src/watch/types.ts';
import type { EventSource, RevisionBatch } from '../../../src/mvcc/types.ts';
import { FakeSource, type FakeOp } from './fake-source.ts';
import { checkWatch, lastDeliveredRevision, type CheckSpec } from './checker.ts';
import { turn, withTimeout } from './helpers.ts';

const KEYS = ['a', 'ab', 'abc', 'b', 'ba', 'c'];

/** What a model run writes through: the fake source or the real revision layer. */
export interface ModelDriver {
  readonly source: EventSource;
  /** Every committed batch with prevKv, never compacted: the checkers' ground truth. */
  readonly fullLog: RevisionBatch[];
  /** Applies ops in one revision; returns the current revision afterwards. Rejected txns are ignored. */
  txn(ops: FakeOp[]): Promise<number>;
  compact(rev: number): Promise<void>;
  /** History reads so far (coverage). */
  reads(): number;
  close(): Promise<void>;
}

export function fakeDriver(): ModelDriver {
  const src = new FakeSource();
  return {
    source: src,
    fullLog: src.fullLog,
    txn: (ops) => Promise.resolve(src.txn(ops)),
    compact: (rev) => Promise.resolve(src.compact(rev)),
    reads: () => src.reads,
    close: () => Promise.resolve(),
  };
}

/** Coverage counters: a property must really exercise delivery, catch-up, compaction, resume. */
export interface Coverage {
  delivered: number;
  compacted: number;
  complete: number;
  resumes: number;
  historyReads: number;
  bookmarks: number;
}

export function newCoverage(): Coverage {
  return { delivered: 0, compacted: 0, complete: 0, resumes: 0, historyReads: 0, bookmarks: 0 };
}

type RangeSpec = { key: string; rangeEnd?: string };

export const rangeArb: fc.Arbitrary<RangeSpec> = fc.oneof(
  fc.constantFrom(...KEYS).map((key) => ({ key })),
  fc.constantFrom(...KEYS).map((key) => ({ key, rangeEnd: prefixEnd(key) })),
  fc.constantFrom(...KEYS).map((key) => ({ key, rangeEnd: '\0' })),
  fc.constant({ key: '\0', rangeEnd: '\0' }),
  fc
    .tuple(fc.constantFrom(...KEYS), fc.constantFrom(...KEYS, 'd'))
    .filter(([a, b]) => a < b)
    .map(([key, rangeEnd]) => ({ key, rangeEnd })),
);

function prefixEnd(k: string): string {
  return k.slice(0, -1) + String.fromCharCode(k.charCodeAt(k.length - 1) + 1);
}

const opArb: fc.Arbitrary<FakeOp> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('put' as const),
      key: fc.constantFrom(...KEYS),
      value: fc.constantFrom('x', 'y', 'z'),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), key: fc.constantFrom(...KEYS) }) },
  {
    weight: 1,
    arbitrary: rangeArb.map((r) => ({ op: 'delete' as const, key: r.key, rangeEnd: r.rangeEnd })),
  },
);

export type Action =
  | { t: 'write'; ops: FakeOp[] }
  | { t: 'compact'; back: number }
  | {
      t: 'watch';
      range: RangeSpec;
      start: number; // -1 = now (0), k >= 0 = k revisions back, 100+ = future
      prevKv: boolean;
      filters: WatchFilter[];
      onStream: boolean;
    }
  | { t: 'read'; w: number; n: number }
  | { t: 'readStream'; n: number }
  | { t: 'progress'; w: number }
  | { t: 'streamProgress' }
  | { t: 'resume'; w: number }
  | { t: 'tick' };

export const actionArb: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({ t: fc.constant('write' as const), ops: fc.array(opArb, { minLength: 1, maxLength: 4 }) }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('compact' as const), back: fc.nat(6) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('watch' as const),
      range: rangeArb,
      start: fc.oneof(fc.constant(-1), fc.nat(12), fc.constant(102)),
      prevKv: fc.boolean(),
      filters: fc.subarray(['NOPUT', 'NODELETE'] as WatchFilter[]),
      onStream: fc.boolean(),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ t: fc.constant('read' as const), w: fc.nat(), n: fc.integer({ min: 1, max: 4 }) }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('readStream' as const), n: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('progress' as const), w: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ t: 'streamProgress' as const }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('resume' as const), w: fc.nat() }) },
  { weight: 2, arbitrary: fc.constant({ t: 'tick' as const }) },
);

/** Keeps at most one next() outstanding and records what it yields, so nothing is lost. */
class Pump {
  #inflight: Promise<void> | null = null;
  ended = false;
  constructor(
    private readonly it: AsyncIterator<WatchResponse>,
    private readonly onResp: (r: WatchResponse) => void,
  ) {}
  /** Starts a read if none is outstanding; returns the outstanding read. */
  pull(): Promise<void> {
    if (this.ended) return Promise.resolve();
    if (this.#inflight === null) {
      this.#inflight = this.it.next().then((r) => {
        this.#inflight = null;
        if (r.done === true) this.ended = true;
        else this.onResp(r.value);
      });
    }
    return this.#inflight;
  }
}

interface Logical {
  spec: CheckSpec;
  request: Omit<WatchRequest, 'startRevision'>;
  got: WatchResponse[];
  onStream: boolean;
  done: boolean; // compacted, or stream/watch ended
  // standalone
  watcher?: ReturnType<WatchHub['watch']>;
  pump?: Pump;
  // stream
  watchId?: number;
  /** Store revision when the current stream segment was created. */
  segmentCreatedRev: number;
}

export async function runScenario(
  actions: Action[],
  maxBufferedEvents: number,
  catchUpRevisions: number,
  driver: ModelDriver,
  seen: Coverage,
): Promise<void> {
  const src = driver.source;
  const hub = new WatchHub(src, { maxBufferedEvents, catchUpRevisions });
  const stream: WatchStream = hub.stream();
  const logicals: Logical[] = [];
  const byId = new Map<number, Logical>();
  let lastStreamProgress = 0;
  const streamPump = new Pump(stream[Symbol.asyncIterator](), (r) => {
    // A created response says where the store was, not what was delivered: no bookmark.
    if (r.created === true) return;
    if (r.watchId === -1) {
      // A stream bookmark covers the watches that existed when it was queued. One at R newer than
      // the revision a segment was created at was certainly queued after that creation.
      lastStreamProgress = r.header.revision;
      for (const l of logicals) {
        if (l.onStream && !l.done && r.header.revision > l.segmentCreatedRev) l.got.push(r);
      }
      return;
    }
    const l = byId.get(r.watchId!);
    if (l === undefined) return; // a canceled id: a real client ignores these too
    if (r.canceled === true && r.compactRevision === undefined) return;
    l.got.push(r);
    if (r.canceled === true) {
      l.done = true;
      byId.delete(r.watchId!);
    }
  });

  const startWatch = (l: Logical, startRevision: number): void => {
    l.segmentCreatedRev = src.currentRevision();
    const req: WatchRequest = { ...l.request, startRevision };
    if (l.onStream) {
      l.watchId = stream.create(req);
      byId.set(l.watchId, l);
    } else {
      l.watcher = hub.watch(req);
      l.pump = new Pump(l.watcher[Symbol.asyncIterator](), (r) => {
        l.got.push(r);
        if (r.canceled === true) l.done = true;
      });
    }
  };

  for (const a of actions) {
    switch (a.t) {
      case 'write':
        await driver.txn(a.ops);
        break;
      case 'compact': {
        const rev = src.currentRevision() - a.back;
        if (rev > src.compactRevision() && rev >= 1) await driver.compact(rev);
        break;
      }
      case 'watch': {
        const cur = src.currentRevision();
        const start = a.start === -1 ? 0 : a.start >= 100 ? cur + (a.start - 100) : Math.max(1, cur - a.start);
        const l: Logical = {
          spec: {
            key: a.range.key,
            rangeEnd: a.range.rangeEnd,
            startRev: start === 0 ? cur + 1 : start,
            prevKv: a.prevKv,
            noPut: a.filters.includes('NOPUT'),
            noDelete: a.filters.includes('NODELETE'),
          },
          request: { key: Buffer.from(a.range.key, 'latin1'), prevKv: a.prevKv, filters: a.filters },
          got: [],
          onStream: a.onStream,
          done: false,
          segmentCreatedRev: cur,
        };
        if (a.range.rangeEnd !== undefined) l.request.rangeEnd = Buffer.from(a.range.rangeEnd, 'latin1');
        logicals.push(l);
        startWatch(l, start);
        break;
      }
      case 'read': {
        const pool = logicals.filter((x) => !x.onStream);
        const l = pool[a.w % Math.max(1, pool.length)];
        if (l?.pump === undefined) break;
        for (let i = 0; i < a.n; i++) {
          void l.pump.pull();
          await turn();
        }
        break;
      }
      case 'readStream':
        for (let i = 0; i < a.n; i++) {
          void streamPump.pull();
          await turn();
        }
        break;
      case 'progress': {
        const pool = logicals.filter((x) => !x.onStream && !x.done);
        const l = pool[a.w % Math.max(1, pool.length)];
        l?.watcher?.requestProgress();
        break;
      }
      case 'streamProgress':
        stream.requestProgress();
        break;
      case 'resume': {
        const live = logicals.filter((x) => !x.done);
        const l = live[a.w % Math.max(1, live.length)];
        if (l === undefined) break;
        // Disconnect: whatever was not yet read is lost, then reconnect from last + 1.
        if (l.onStream) {
          byId.delete(l.watchId!);
          stream.cancel(l.watchId!);
        } else {
          l.watcher!.cancel();
          await l.pump!.pull(); // the outstanding read resolves as done
        }
        if (l.done) break;
        const from = lastDeliveredRevision(l.got, l.spec.startRev) + 1;
        seen.resumes++;
        startWatch(l, from);
        break;
      }
      case 'tick':
        for (let i = 0; i < 3; i++) await turn();
        break;
    }
  }

  // Drain everyone to a bookmark at the current revision (or to the compacted end). The last
  // write makes that revision newer than every segment's creation (see the stream bookmark rule).
  const final = await driver.txn([{ op: 'put', key: 'zzz', value: 'end' }]);
  for (const l of logicals) {
    if (l.onStream || l.done) continue;
    l.watcher!.requestProgress();
    while (!l.done && !l.pump!.ended) {
      const last = l.got.at(-1);
      if (last !== undefined && last.events.length === 0 && !last.canceled && last.header.revision === final) break;
      await withTimeout(l.pump!.pull(), 3000, 'standalone drain');
    }
  }
  stream.requestProgress();
  while (logicals.some((l) => l.onStream && !l.done) && lastStreamProgress !== final) {
    const before = lastStreamProgress;
    await withTimeout(streamPump.pull(), 3000, 'stream drain');
    if (lastStreamProgress !== before && lastStreamProgress !== final) stream.requestProgress();
  }

  for (const [i, l] of logicals.entries()) {
    const res = checkWatch(driver.fullLog, { ...l.spec, prevKvOptionalUpTo: src.compactRevision() }, l.got);
    if (!res.compacted) assert.equal(res.complete, true, `watcher ${i} not complete`);
    seen.delivered += res.delivered;
    if (res.compacted) seen.compacted++;
    else seen.complete++;
    seen.bookmarks += l.got.filter((r) => r.events.length === 0 && r.canceled !== true).length;
  }
  seen.historyReads += driver.reads();
  hub.close();
  await driver.close();
}

/**
 * The guarantee model as a fast-check property: `numRuns` random scenarios of 10 to `maxActions`
 * actions with random buffer and catch-up sizes, each over a fresh driver. Returns what the runs
 * exercised, so a test can check the generator reached the interesting cases.
 */
export async function checkGuarantees(
  makeDriver: () => ModelDriver,
  opts: { maxActions: number; numRuns: number },
): Promise<Coverage> {
  const seen = newCoverage();
  await fc.assert(
    fc.asyncProperty(
      fc.array(actionArb, { minLength: 10, maxLength: opts.maxActions, size: 'max' }),
      fc.integer({ min: 1, max: 8 }),
      fc.integer({ min: 1, max: 5 }),
      async (actions, maxBuf, chunk) => {
        await runScenario(actions, maxBuf, chunk, makeDriver(), seen);
      },
    ),
    { numRuns: opts.numRuns },
  );
  return seen;
}
