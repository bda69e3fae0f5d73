/**
 * The raft log, hard state and snapshot metadata of a member, kept in the member's one bolt file
 * (buckets in raft-buckets.ts) and mirrored in memory so the raft core's synchronous reads never
 * touch the disk. Mutations update the mirror and queue the matching bucket writes; the member
 * hands the queue to the next bolt write transaction (RaftBackend), the same transaction that
 * applies committed entries when both fall in one Ready.
 *
 * The mirror may run ahead of the disk only between save() and the commit that carries it; the
 * member never sends a message or advances raft before that commit is durable, and a failed
 * commit stops the member (it restarts from what the disk holds).
 */
import type { BackendReader, BackendWriter } from '../mvcc/backend.ts';
import type { ConfState, Entry, HardState, Snapshot, SnapshotMetadata, Storage } from '../raft/index.ts';
import { RaftError } from '../raft/index.ts';
import { limitSizeOf } from './limit.ts';
import {
  DUMMY_KEY, HARDSTATE_KEY, RAFT_LOG_BUCKET, RAFT_STATE_BUCKET, SNAPSHOT_KEY, decodeEntry, decodeHardState,
  decodeIndexKey, decodeIndexTerm, decodeSnapshotMeta, encodeEntry, encodeHardState, encodeIndexTerm,
  encodeSnapshotMeta, indexKey,
} from './raft-buckets.ts';
import { ReplicationError } from './errors.ts';

/** A queued change to the raft buckets. */
export type RaftWrite = (w: BackendWriter) => void;

/** What one Ready asks to persist. */
export interface RaftSave {
  hardState?: HardState;
  entries: readonly Entry[];
  snapshot?: Snapshot;
}

const EMPTY = new Uint8Array(0);

function cloneConf(cs: ConfState): ConfState {
  return { voters: [...cs.voters], learners: [...cs.learners] };
}

export class BoltRaftStorage implements Storage {
  private hard: HardState = { term: 0, vote: 0, commit: 0 };
  /** Index and term of the entry just before ents[0] (compacted, or the snapshot point). */
  private dummy = { index: 0, term: 0 };
  private snapMeta: SnapshotMetadata = { index: 0, term: 0, confState: { voters: [], learners: [] } };
  private ents: Entry[] = [];
  private writes: RaftWrite[] = [];

  /** Rebuilds the mirror from the raft buckets (empty buckets: a fresh member). */
  static load(r: BackendReader): BoltRaftStorage {
    return new BoltRaftStorage().reload(r);
  }

  /** Replaces the mirror with what the buckets hold (after a snapshot replaced the file). */
  reload(r: BackendReader): this {
    const s = new BoltRaftStorage();
    const hs = r.get(RAFT_STATE_BUCKET, HARDSTATE_KEY);
    if (hs !== undefined) s.hard = decodeHardState(hs);
    const d = r.get(RAFT_STATE_BUCKET, DUMMY_KEY);
    if (d !== undefined) s.dummy = decodeIndexTerm(d);
    const sm = r.get(RAFT_STATE_BUCKET, SNAPSHOT_KEY);
    if (sm !== undefined) s.snapMeta = decodeSnapshotMeta(sm);
    let expect = s.dummy.index + 1;
    r.scan(RAFT_LOG_BUCKET, indexKey(expect), undefined, (k, v) => {
      const i = decodeIndexKey(k);
      if (i !== expect) throw new ReplicationError('ERR_CORRUPT', `raft log has a gap: expected ${expect}, found ${i}`);
      s.ents.push(decodeEntry(i, v));
      expect++;
    });
    if (s.snapMeta.index < s.dummy.index || s.snapMeta.index > s.lastIndex()) {
      throw new ReplicationError('ERR_CORRUPT', `snapshot index ${s.snapMeta.index} outside the log [${s.dummy.index}, ${s.lastIndex()}]`);
    }
    this.hard = s.hard;
    this.dummy = s.dummy;
    this.snapMeta = s.snapMeta;
    this.ents = s.ents;
    this.writes = [];
    return this;
  }

  // ------------------------------------------------------------------ Storage (read side)

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: { ...this.hard }, confState: cloneConf(this.snapMeta.confState) };
  }

  entries(lo: number, hi: number, maxSize: number): Entry[] {
    if (lo <= this.dummy.index) throw new RaftError('ERR_RAFT_COMPACTED', `entries: index ${lo} is compacted (first ${this.dummy.index + 1})`);
    if (hi > this.lastIndex() + 1) {
      throw new RaftError('ERR_RAFT_UNAVAILABLE', `entries: index ${hi - 1} is past the last index ${this.lastIndex()}`);
    }
    if (lo >= hi) return [];
    const off = this.dummy.index + 1;
    return limitSizeOf(this.ents.slice(lo - off, hi - off), maxSize);
  }

  term(i: number): number {
    if (i < this.dummy.index) throw new RaftError('ERR_RAFT_COMPACTED', `term: index ${i} is compacted (first ${this.dummy.index + 1})`);
    if (i > this.lastIndex()) throw new RaftError('ERR_RAFT_UNAVAILABLE', `term: index ${i} is past the last index ${this.lastIndex()}`);
    if (i === this.dummy.index) return this.dummy.term;
    return this.ents[i - this.dummy.index - 1]!.term;
  }

  lastIndex(): number {
    return this.dummy.index + this.ents.length;
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

  // ------------------------------------------------------------------ mutations (queued writes)

  /** Mirrors what one Ready persists and queues the bucket writes for it. */
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
      throw new RaftError('ERR_RAFT_SNAP_OUT_OF_DATE', `snapshot at ${m.index} is not newer than ${this.snapMeta.index}`);
    }
    const from = this.firstIndex();
    const to = this.lastIndex();
    this.snapMeta = { index: m.index, term: m.term, confState: cloneConf(m.confState) };
    this.dummy = { index: m.index, term: m.term };
    this.ents = [];
    const meta = encodeSnapshotMeta(this.snapMeta);
    const dummy = encodeIndexTerm(m.index, m.term);
    this.writes.push((w) => {
      for (let i = from; i <= to; i++) w.delete(RAFT_LOG_BUCKET, indexKey(i));
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
    const last = this.lastIndex();
    if (start > last + 1) throw new RaftError('ERR_RAFT_UNAVAILABLE', `append leaves a gap: last ${last}, new ${start}`);
    for (let k = 1; k < ents.length; k++) {
      if (ents[k]!.index !== start + k) throw new ReplicationError('ERR_INVALID_ARGUMENT', 'appended entries are not contiguous');
    }
    this.ents = this.ents.slice(0, start - first).concat(ents);
    const newLast = start + ents.length - 1;
    const puts = ents.map((e) => [indexKey(e.index), encodeEntry(e)] as const);
    this.writes.push((w) => {
      for (let i = newLast + 1; i <= last; i++) w.delete(RAFT_LOG_BUCKET, indexKey(i));
      for (const [k, v] of puts) w.put(RAFT_LOG_BUCKET, k, v);
    });
  }

  /**
   * Records that the state machine reflects everything up to `i` (membership `cs` after i): a
   * follower too far behind is then sent the bolt file with this metadata.
   */
  createSnapshot(i: number, cs: ConfState): void {
    if (i <= this.snapMeta.index) {
      throw new RaftError('ERR_RAFT_SNAP_OUT_OF_DATE', `snapshot at ${i} is not newer than ${this.snapMeta.index}`);
    }
    if (i > this.lastIndex()) throw new RaftError('ERR_RAFT_UNAVAILABLE', `snapshot index ${i} is past the last index ${this.lastIndex()}`);
    this.snapMeta = { index: i, term: this.term(i), confState: cloneConf(cs) };
    const meta = encodeSnapshotMeta(this.snapMeta);
    this.writes.push((w) => w.put(RAFT_STATE_BUCKET, SNAPSHOT_KEY, meta));
  }

  /** Drops the entries up to and including i (i ≤ the snapshot index); i becomes the dummy. */
  compact(i: number): void {
    if (i <= this.dummy.index) throw new RaftError('ERR_RAFT_COMPACTED', `compact: index ${i} is already compacted`);
    if (i > this.snapMeta.index) {
      throw new RaftError('ERR_RAFT_UNAVAILABLE', `compact: index ${i} is past the snapshot index ${this.snapMeta.index}`);
    }
    const from = this.firstIndex();
    this.dummy = { index: i, term: this.term(i) };
    this.ents = this.ents.slice(i - from + 1);
    const dummy = encodeIndexTerm(this.dummy.index, this.dummy.term);
    this.writes.push((w) => {
      for (let k = from; k <= i; k++) w.delete(RAFT_LOG_BUCKET, indexKey(k));
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
