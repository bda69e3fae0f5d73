/**
 * Verifies one watch's response sequence against the replayed history: etcd's six guarantees
 * (ordered, unique, reliable, atomic, resumable, bookmarkable) plus prev_kv and filters.
 *
 * The expected events are the history's events in the watched range, at or after the start
 * revision, minus filtered types. Walking the responses with one pointer into that list checks
 * ordered + unique + reliable at once (each event response must be exactly the next slice), atomic
 * (a slice never ends in the middle of a revision), bookmarkable (a progress notification at R
 * finds every expected event <= R already consumed). Resumable is checked by feeding the
 * concatenation of a canceled watch's responses and its resumed successor's.
 */
import { Buffer } from 'node:buffer';
import type { Event, RevisionBatch } from '../../../src/mvcc/types.ts';
import type { WatchResponse } from '../../../src/watch/types.ts';
import { inRange } from './fake-source.ts';

export interface CheckSpec {
  key: string;
  rangeEnd?: string;
  startRev: number;
  prevKv: boolean;
  noPut: boolean;
  noDelete: boolean;
  /**
   * etcd (and the real store) cannot give prevKv for an event read back from history at exactly
   * the compact revision: the previous version is gone. Events at or below this revision may
   * therefore lack prevKv (but never carry a wrong one).
   */
  prevKvOptionalUpTo?: number;
}

export interface CheckResult {
  /** Events delivered. */
  delivered: number;
  /** All expected events were delivered (a final bookmark covered everything). */
  complete: boolean;
  compacted: boolean;
}

const dec = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

function kvEq(a: Event['kv'] | undefined, b: Event['kv'] | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return (
    Buffer.compare(a.key, b.key) === 0 &&
    Buffer.compare(a.value, b.value) === 0 &&
    a.createRevision === b.createRevision &&
    a.modRevision === b.modRevision &&
    a.version === b.version &&
    a.lease === b.lease
  );
}

function describe(e: Event | undefined): string {
  if (e === undefined) return '<none>';
  return `${e.type} ${JSON.stringify(dec(e.kv.key))}@${e.kv.modRevision}`;
}

/**
 * The events the watch must deliver, each with the prevKv etcd gives: the key's value at
 * revision - 1 (none for a create), replayed from the history itself (not taken from the source under test).
 */
export function expectedEvents(history: RevisionBatch[], spec: CheckSpec): Event[] {
  const out: Event[] = [];
  const live = new Map<string, Event['kv']>();
  for (const b of history) {
    const before = new Map<string, Event['kv'] | undefined>();
    for (const e of b.events) {
      const k = dec(e.kv.key);
      if (!before.has(k)) before.set(k, live.get(k));
      if (e.type === 'PUT') live.set(k, e.kv);
      else live.delete(k);
      if (b.revision < spec.startRev) continue;
      if (!inRange(k, spec.key, spec.rangeEnd)) continue;
      if (e.type === 'PUT' ? spec.noPut : spec.noDelete) continue;
      // etcd attaches no prevKv to a create (PUT with version 1), even after a delete in one txn.
      const prevKv = e.type === 'PUT' && e.kv.version === 1 ? undefined : before.get(k);
      out.push(prevKv === undefined ? { type: e.type, kv: e.kv } : { type: e.type, kv: e.kv, prevKv });
    }
  }
  return out;
}

/** Throws an Error describing the first violated guarantee. */
export function checkWatch(history: RevisionBatch[], spec: CheckSpec, responses: WatchResponse[]): CheckResult {
  const exp = expectedEvents(history, spec);
  let p = 0;
  let lastHeader = 0;
  let compacted = false;
  let complete = false;
  let lastDelivered = spec.startRev - 1;
  for (let i = 0; i < responses.length; i++) {
    const r = responses[i]!;
    const where = `response #${i} (header ${r.header.revision})`;
    if (compacted) throw new Error(`${where}: response after the compacted cancel`);
    if (r.compactRevision !== undefined) {
      // As etcd's, the compacted cancel has header revision 0: it promises nothing.
      if (r.header.revision !== 0) throw new Error(`${where}: compacted response with a header revision`);
      if (r.canceled !== true) throw new Error(`${where}: compacted response not canceled`);
      if (r.events.length !== 0) throw new Error(`${where}: compacted response carries events`);
      // The watcher's resume point lies above everything it delivered and below the compact
      // revision; otherwise it was canceled although its history was still there.
      if (lastDelivered + 1 >= r.compactRevision) {
        throw new Error(`${where}: compacted at ${r.compactRevision} though resume point >= ${lastDelivered + 1}`);
      }
      compacted = true;
      continue;
    }
    if (r.header.revision < lastHeader) throw new Error(`${where}: header revision went backwards`);
    lastHeader = r.header.revision;
    if (r.canceled === true) throw new Error(`${where}: unexpected cancel ${r.cancelReason ?? ''}`);
    if (r.events.length === 0) {
      // Progress notification: bookmark at R means every expected event <= R was delivered.
      const R = r.header.revision;
      if (p < exp.length && exp[p]!.kv.modRevision <= R) {
        throw new Error(`${where}: bookmark at ${R} but ${describe(exp[p])} was not delivered (bookmarkable)`);
      }
      lastDelivered = Math.max(lastDelivered, R);
      continue;
    }
    for (let j = 0; j < r.events.length; j++) {
      const got = r.events[j]!;
      const want = exp[p];
      if (want === undefined) throw new Error(`${where}: extra event ${describe(got)} (unique)`);
      if (got.type !== want.type || !kvEq(got.kv, want.kv)) {
        throw new Error(`${where}: got ${describe(got)}, expected ${describe(want)} (ordered/unique/reliable)`);
      }
      if (got.kv.modRevision > r.header.revision) {
        throw new Error(`${where}: event ${describe(got)} newer than its header`);
      }
      if (spec.prevKv) {
        const mayLack = got.prevKv === undefined && got.kv.modRevision <= (spec.prevKvOptionalUpTo ?? 0);
        if (!mayLack && !kvEq(got.prevKv, want.prevKv)) {
          throw new Error(`${where}: wrong prevKv on ${describe(got)}`);
        }
      } else if (got.prevKv !== undefined) {
        throw new Error(`${where}: prevKv on ${describe(got)} though not asked`);
      }
      p++;
    }
    const lastRev = r.events[r.events.length - 1]!.kv.modRevision;
    lastDelivered = Math.max(lastDelivered, lastRev, r.header.revision);
    // boltkv's header promise: every event up to header.revision is delivered by now.
    if (p < exp.length && exp[p]!.kv.modRevision <= r.header.revision) {
      throw new Error(`${where}: header ${r.header.revision} but ${describe(exp[p])} not yet delivered`);
    }
    if (p < exp.length && exp[p]!.kv.modRevision === lastRev) {
      throw new Error(`${where}: revision ${lastRev} split across responses (atomic)`);
    }
  }
  if (p === exp.length) complete = true;
  return { delivered: p, complete, compacted };
}

/** Last revision fully delivered: where a client resumes from (+1), taken from response headers. */
export function lastDeliveredRevision(responses: WatchResponse[], startRev: number): number {
  let last = startRev - 1;
  for (const r of responses) {
    if (r.canceled === true) continue;
    // Both event and progress headers promise completeness up to header.revision.
    last = Math.max(last, r.header.revision);
  }
  return last;
}
