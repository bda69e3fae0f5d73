/**
 * The raft log, hard state and snapshot metadata of a member, kept in the member's one bolt file
 * (buckets in raft-buckets.ts). The raft core's reads are synchronous, and a log of large entries
 * does not fit in memory, so only what is small or hot stays there: hard state, snapshot metadata,
 * the log's bounds, its terms as runs (term-runs.ts), and the newest entries up to a byte budget
 * (entry-cache.ts). Older entries are read from the file on demand, in a read transaction.
 *
 * Mutations update memory and queue the matching bucket writes; the member hands the queue to the
 * next bolt write transaction (RaftBackend), the same transaction that applies committed entries
 * when both fall in one Ready. Until that commit is durable the file lags memory, so an appended
 * entry stays in the cache (pinned) until the commit carrying it reports back: a read never looks
 * on disk for an entry the disk does not hold yet. A failed commit stops the member (it restarts
 * from what the disk holds).
 */
import type { Backend, BackendReader, BackendWriter } from '../mvcc/backend.ts';
import type { ConfState, Entry, HardState, Snapshot, SnapshotMetadata, Storage } from '../raft/index.ts';
import { RaftError } from '../raft/index.ts';
import { EntryCache, entryCost } from './entry-cache.ts';
import { ReplicationError } from './errors.ts';
import {
  DUMMY_KEY,
  HARDSTATE_KEY,
  RAFT_LOG_BUCKET,
  RAFT_STATE_BUCKET,
  RAFT_TERMS_BUCKET,
  SNAPSHOT_KEY,
  decodeEntry,
  decodeEntryTerm,
  decodeHardState,
  decodeIndexKey,
  decodeIndexTerm,
  decodeSnapshotMeta,
  decodeTerm,
  encodeEntry,
  encodeHardState,
  encodeIndexTerm,
  encodeSnapshotMeta,
  encodeTerm,
  indexKey,
} from './raft-buckets.ts';
import { type TermRun, TermRuns } from './term-runs.ts';

/**
 * A queued change to the raft buckets, run inside a write transaction. It may return a callback
 * for once that transaction is durable (RaftBackend calls it; nobody does if the commit fails).
 */
export type RaftWrite = (w: BackendWriter) => void | (() => void);

/** What one Ready asks to persist. */
export interface RaftSave {
  hardState?: HardState;
  entries: readonly Entry[];
  snapshot?: Snapshot;
}

/** Where the log is read from: the member's backend (a fresh read transaction per call). */
export type LogSource = Pick<Backend, 'view'>;

export interface BoltRaftStorageOptions {
  /**
   * Bytes of the newest entries kept in memory (default 8 MiB). Entries not yet durable are kept
   * beyond it until their commit lands.
   */
  cacheBytes?: number;
}

export const DEFAULT_CACHE_BYTES = 8 * 2 ** 20;

const EMPTY = new Uint8Array(0);

function cloneConf(cs: ConfState): ConfState {
  return { voters: [...cs.voters], learners: [...cs.learners] };
}

/** An append whose commit has not reported back yet. */
interface PendingAppend {
  seq: number;
  start: number;
  last: number;
}

export class BoltRaftStorage implements Storage {
  private hard: HardState = { term: 0, vote: 0, commit: 0 };
  /** Index and term of the entry just before the first live one (compacted, or the snapshot point). */
  private dummy = { index: 0, term: 0 };
  private snapMeta: SnapshotMetadata = { index: 0, term: 0, confState: { voters: [], learners: [] } };
  private last = 0;
  private runs = new TermRuns();
  private cache: EntryCache;
  /** The file holds live entries up to here as memory has them: older ones may leave the cache. */
  private durableLast = 0;
  private pending: PendingAppend[] = [];
  private seq = 0;
  /** Bumped when memory is replaced wholesale: callbacks of older commits are then ignored. */
  private gen = 0;
  private writes: RaftWrite[] = [];

  private constructor(
    private source: LogSource,
    opts: BoltRaftStorageOptions,
  ) {
    this.cache = new EntryCache(opts.cacheBytes ?? DEFAULT_CACHE_BYTES);
  }

  /** Reads the raft buckets' small state (empty buckets: a fresh member); entries stay on disk. */
  static load(source: LogSource, opts: BoltRaftStorageOptions = {}): BoltRaftStorage {
    return new BoltRaftStorage(source, opts).reload(source);
  }

  /** Starts over from what the buckets hold (after a snapshot replaced the file). */
  reload(source: LogSource): this {
    const s = source.view((r) => readState(r));
    if (s.snapMeta.index < s.dummy.index || s.snapMeta.index > s.last) {
      throw new ReplicationError(
        'ERR_CORRUPT',
        `snapshot index ${s.snapMeta.index} outside the log [${s.dummy.index}, ${s.last}]`,
      );
    }
    this.source = source;
    this.hard = s.hard;
    this.dummy = s.dummy;
    this.snapMeta = s.snapMeta;
    this.last = s.last;
    this.runs = new TermRuns(s.runs);
    this.cache.clear();
    this.durableLast = s.last;
    this.pending = [];
    this.gen++;
    this.writes = [];
    if (s.rebuilt) {
      // a file from before the terms bucket: store the runs so the next start need not scan
      const puts = this.runs.list().map((r) => [indexKey(r.start), encodeTerm(r.term)] as const);
      this.writes.push((w) => {
        for (const [k, v] of puts) w.put(RAFT_TERMS_BUCKET, k, v);
      });
    }
    this.warm();
    return this;
  }

  /** Fills the cache with the newest entries, within its budget. */
  private warm(): void {
    if (this.last <= this.dummy.index) return;
    const got: Entry[] = [];
    let bytes = 0;
    this.source.view((r) =>
      r.scanReverse(RAFT_LOG_BUCKET, indexKey(this.dummy.index + 1), indexKey(this.last + 1), (k, v) => {
        const i = decodeIndexKey(k);
        if (i !== this.last - got.length) throw gap(this.last - got.length, i);
        const e = decodeEntry(i, v);
        if (e.term !== this.term(i))
          throw new ReplicationError(
            'ERR_CORRUPT',
            `raft log entry ${i} has term ${e.term}, the term index says ${this.term(i)}`,
          );
        bytes += entryCost(e);
        if (bytes > this.cache.budget) return false;
        got.push(e);
        return true;
      }),
    );
    got.reverse();
    this.cache.append(got);
  }

  // ------------------------------------------------------------------ Storage (read side)

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: { ...this.hard }, confState: cloneConf(this.snapMeta.confState) };
  }

  entries(lo: number, hi: number, maxSize: number): Entry[] {
    if (lo <= this.dummy.index)
      throw new RaftError('ERR_RAFT_COMPACTED', `entries: index ${lo} is compacted (first ${this.dummy.index + 1})`);
    if (hi > this.last + 1) {
      throw new RaftError('ERR_RAFT_UNAVAILABLE', `entries: index ${hi - 1} is past the last index ${this.last}`);
    }
    if (lo >= hi) return [];
    const out: Entry[] = [];
    // the raft core's budget rule: the longest prefix within maxSize bytes, at least one entry
    let size = 0;
    const fits = (e: Entry): boolean => {
      size += e.data.length + 24;
      return out.length === 0 || size <= maxSize;
    };
    const cached = this.cache.first(this.last);
    if (lo < cached) {
      const end = Math.min(hi, cached);
      let full = false;
      this.source.view((r) =>
        r.scan(RAFT_LOG_BUCKET, indexKey(lo), indexKey(end), (k, v) => {
          const i = decodeIndexKey(k);
          if (i !== lo + out.length) throw gap(lo + out.length, i);
          const e = decodeEntry(i, v);
          if (e.term !== this.term(i))
            throw new ReplicationError(
              'ERR_CORRUPT',
              `raft log entry ${i} has term ${e.term}, the term index says ${this.term(i)}`,
            );
          if (!fits(e)) {
            full = true;
            return false;
          }
          out.push(e);
          return true;
        }),
      );
      if (full) return out;
      if (out.length !== end - lo) throw gap(lo + out.length, undefined);
    }
    for (let i = Math.max(lo, cached); i < hi; i++) {
      const e = this.cache.get(i)!;
      if (!fits(e)) break;
      out.push(e);
    }
    return out;
  }

  term(i: number): number {
    if (i < this.dummy.index)
      throw new RaftError('ERR_RAFT_COMPACTED', `term: index ${i} is compacted (first ${this.dummy.index + 1})`);
    if (i > this.last)
      throw new RaftError('ERR_RAFT_UNAVAILABLE', `term: index ${i} is past the last index ${this.last}`);
    if (i === this.dummy.index) return this.dummy.term;
    const t = this.runs.termAt(i);
    if (t === undefined) throw new ReplicationError('ERR_CORRUPT', `no term known for raft log entry ${i}`);
    return t;
  }

  lastIndex(): number {
    return this.last;
  }

  firstIndex(): number {
    return this.dummy.index + 1;
  }

  /** The latest snapshot's metadata; the data (the bolt file) travels separately. */
  snapshot(): Snapshot {
    return { data: EMPTY, metadata: { ...this.snapMeta, confState: cloneConf(this.snapMeta.confState) } };
  }

  hardState(): HardState {
    return { ...this.hard };
  }

  /** Index of the latest snapshot: what a restarted member tells raft it has applied. */
  snapshotIndex(): number {
    return this.snapMeta.index;
  }

  /** Bytes of entries held in memory (the cache, including entries waiting for their commit). */
  cachedBytes(): number {
    return this.cache.bytes();
  }

  // ------------------------------------------------------------------ mutations (queued writes)

  /** Applies what one Ready persists in memory and queues the bucket writes for it. */
  save(rd: RaftSave): void {
    if (rd.snapshot !== undefined) this.applySnapshot(rd.snapshot.metadata);
    if (rd.entries.length > 0) this.append(rd.entries);
    if (rd.hardState !== undefined) {
      this.hard = { ...rd.hardState };
      const v = encodeHardState(this.hard);
      this.writes.push((w) => w.put(RAFT_STATE_BUCKET, HARDSTATE_KEY, v));
    }
  }

  /** A snapshot from the leader replaces the whole log. */
  private applySnapshot(m: SnapshotMetadata): void {
    if (m.index <= this.snapMeta.index) {
      throw new RaftError(
        'ERR_RAFT_SNAP_OUT_OF_DATE',
        `snapshot at ${m.index} is not newer than ${this.snapMeta.index}`,
      );
    }
    const from = this.firstIndex();
    const to = this.last;
    const runsBefore = this.runs.list();
    this.snapMeta = { index: m.index, term: m.term, confState: cloneConf(m.confState) };
    this.dummy = { index: m.index, term: m.term };
    this.last = m.index;
    this.runs.clear();
    this.cache.clear();
    // nothing live is left to read from disk; commits of earlier appends no longer matter
    this.durableLast = m.index;
    this.pending = [];
    this.gen++;
    const meta = encodeSnapshotMeta(this.snapMeta);
    const dummy = encodeIndexTerm(m.index, m.term);
    this.writes.push((w) => {
      for (let i = from; i <= to; i++) w.delete(RAFT_LOG_BUCKET, indexKey(i));
      for (const r of runsBefore) w.delete(RAFT_TERMS_BUCKET, indexKey(r.start));
      w.put(RAFT_STATE_BUCKET, SNAPSHOT_KEY, meta);
      w.put(RAFT_STATE_BUCKET, DUMMY_KEY, dummy);
    });
  }

  /** Appends, replacing any stored suffix from the first new index on; compacted entries are skipped. */
  private append(entries: readonly Entry[]): void {
    let ents = entries;
    const first = this.firstIndex();
    if (ents[ents.length - 1]!.index < first) return;
    if (ents[0]!.index < first) ents = ents.slice(first - ents[0]!.index);
    const start = ents[0]!.index;
    const last = this.last;
    if (start > last + 1)
      throw new RaftError('ERR_RAFT_UNAVAILABLE', `append leaves a gap: last ${last}, new ${start}`);
    for (let k = 1; k < ents.length; k++) {
      if (ents[k]!.index !== start + k)
        throw new ReplicationError('ERR_INVALID_ARGUMENT', 'appended entries are not contiguous');
    }
    // the common case, more entries of the current term, changes no run
    const sameRun =
      start === last + 1 && last > this.dummy.index && ents.every((e) => e.term === this.runs.termAt(last));
    let deletes: number[] = [];
    let puts: TermRun[] = [];
    if (!sameRun) {
      const runsBefore = this.runs.list();
      this.runs.truncateFrom(start);
      for (const e of ents) this.runs.push(e.index, e.term);
      ({ deletes, puts } = this.runs.diffFrom(runsBefore));
    }
    const newLast = start + ents.length - 1;
    this.last = newLast;
    this.cache.append(ents);
    // the file's copy of [start, ...] is stale until this append commits
    this.durableLast = Math.min(this.durableLast, start - 1);
    const p: PendingAppend = { seq: ++this.seq, start, last: newLast };
    this.pending.push(p);
    const gen = this.gen;
    const rows = ents.map((e) => [indexKey(e.index), encodeEntry(e)] as const);
    this.writes.push((w) => {
      for (let i = newLast + 1; i <= last; i++) w.delete(RAFT_LOG_BUCKET, indexKey(i));
      for (const [k, v] of rows) w.put(RAFT_LOG_BUCKET, k, v);
      for (const s of deletes) w.delete(RAFT_TERMS_BUCKET, indexKey(s));
      for (const r of puts) w.put(RAFT_TERMS_BUCKET, indexKey(r.start), encodeTerm(r.term));
      return () => this.appended(gen, p.seq);
    });
    this.cache.trim(this.durableLast);
  }

  /** The commit carrying append `seq` (and every earlier write) is durable. */
  private appended(gen: number, seq: number): void {
    if (gen !== this.gen) return;
    const k = this.pending.findIndex((p) => p.seq === seq);
    if (k < 0) return;
    const done = this.pending[k]!;
    this.pending = this.pending.slice(k + 1);
    // a later, still uncommitted append may have replaced part of what this one wrote
    let upTo = Math.min(done.last, this.last);
    for (const p of this.pending) upTo = Math.min(upTo, p.start - 1);
    this.durableLast = Math.max(this.durableLast, upTo);
    this.cache.trim(this.durableLast);
  }

  /**
   * Records that the state machine reflects everything up to `i` (membership `cs` after i): a
   * follower too far behind is then sent the bolt file with this metadata.
   */
  createSnapshot(i: number, cs: ConfState): void {
    if (i <= this.snapMeta.index) {
      throw new RaftError('ERR_RAFT_SNAP_OUT_OF_DATE', `snapshot at ${i} is not newer than ${this.snapMeta.index}`);
    }
    if (i > this.last)
      throw new RaftError('ERR_RAFT_UNAVAILABLE', `snapshot index ${i} is past the last index ${this.last}`);
    this.snapMeta = { index: i, term: this.term(i), confState: cloneConf(cs) };
    const meta = encodeSnapshotMeta(this.snapMeta);
    this.writes.push((w) => w.put(RAFT_STATE_BUCKET, SNAPSHOT_KEY, meta));
  }

  /** Drops the entries up to and including i (i ≤ the snapshot index); i becomes the dummy. */
  compact(i: number): void {
    if (i <= this.dummy.index) throw new RaftError('ERR_RAFT_COMPACTED', `compact: index ${i} is already compacted`);
    if (i > this.snapMeta.index) {
      throw new RaftError(
        'ERR_RAFT_UNAVAILABLE',
        `compact: index ${i} is past the snapshot index ${this.snapMeta.index}`,
      );
    }
    const from = this.firstIndex();
    this.dummy = { index: i, term: this.term(i) };
    const runsBefore = this.runs.list();
    this.runs.dropBefore(i + 1);
    const { deletes } = this.runs.diffFrom(runsBefore);
    this.cache.dropThrough(i);
    const dummy = encodeIndexTerm(this.dummy.index, this.dummy.term);
    this.writes.push((w) => {
      for (let k = from; k <= i; k++) w.delete(RAFT_LOG_BUCKET, indexKey(k));
      for (const s of deletes) w.delete(RAFT_TERMS_BUCKET, indexKey(s));
      w.put(RAFT_STATE_BUCKET, DUMMY_KEY, dummy);
    });
  }

  /** True when writes are queued for the next transaction. */
  hasWrites(): boolean {
    return this.writes.length > 0;
  }

  /** Hands the queued writes over (to be run, in order, in one write transaction). */
  takeWrites(): RaftWrite[] {
    const w = this.writes;
    this.writes = [];
    return w;
  }
}

function gap(expected: number, found: number | undefined): ReplicationError {
  return new ReplicationError(
    'ERR_CORRUPT',
    `raft log has a gap: expected entry ${expected}, found ${found ?? 'none'}`,
  );
}

interface LoadedState {
  hard: HardState;
  dummy: { index: number; term: number };
  snapMeta: SnapshotMetadata;
  last: number;
  runs: TermRun[];
  /** The runs were rebuilt from the entries (no terms bucket yet). */
  rebuilt: boolean;
}

/** Everything but the entries: hard state, bounds, snapshot metadata, term runs. */
function readState(r: BackendReader): LoadedState {
  let hard: HardState = { term: 0, vote: 0, commit: 0 };
  let dummy = { index: 0, term: 0 };
  let snapMeta: SnapshotMetadata = { index: 0, term: 0, confState: { voters: [], learners: [] } };
  const hs = r.get(RAFT_STATE_BUCKET, HARDSTATE_KEY);
  if (hs !== undefined) hard = decodeHardState(hs);
  const d = r.get(RAFT_STATE_BUCKET, DUMMY_KEY);
  if (d !== undefined) dummy = decodeIndexTerm(d);
  const sm = r.get(RAFT_STATE_BUCKET, SNAPSHOT_KEY);
  if (sm !== undefined) snapMeta = decodeSnapshotMeta(sm);
  let last = dummy.index;
  r.scanReverse(RAFT_LOG_BUCKET, indexKey(dummy.index + 1), undefined, (k) => {
    last = decodeIndexKey(k);
    return false;
  });
  if (last > dummy.index) {
    let first = 0;
    r.scan(RAFT_LOG_BUCKET, indexKey(dummy.index + 1), undefined, (k) => {
      first = decodeIndexKey(k);
      return false;
    });
    if (first !== dummy.index + 1) throw gap(dummy.index + 1, first);
  }
  const stored: TermRun[] = [];
  r.scan(RAFT_TERMS_BUCKET, indexKey(0), undefined, (k, v) => {
    stored.push({ start: decodeIndexKey(k), term: decodeTerm(v) });
  });
  const runs = new TermRuns(stored);
  runs.dropBefore(dummy.index + 1);
  let rebuilt = false;
  if (last === dummy.index) {
    runs.clear();
  } else if (stored.length === 0) {
    // written before the terms bucket existed: read the terms once (the data is not kept)
    let expect = dummy.index + 1;
    r.scan(RAFT_LOG_BUCKET, indexKey(expect), indexKey(last + 1), (k, v) => {
      const i = decodeIndexKey(k);
      if (i !== expect) throw gap(expect, i);
      runs.push(i, decodeEntryTerm(i, v));
      expect++;
    });
    rebuilt = true;
  } else {
    const list = runs.list();
    if (list[0]!.start > dummy.index + 1 || list[list.length - 1]!.start > last) {
      throw new ReplicationError('ERR_CORRUPT', `raft term runs do not cover the log (${dummy.index}, ${last}]`);
    }
  }
  return { hard, dummy, snapMeta, last, runs: [...runs.list()], rebuilt };
}
