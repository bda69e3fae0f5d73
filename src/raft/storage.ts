import { RaftError } from './errors.ts';
import type { ConfState, Entry, HardState, Snapshot } from './types.ts';
import { emptyHardState, limitSize } from './types.ts';

/**
 * The durable side of the log, as the raft core reads it. Every method is synchronous so a bolt
 * file (read in a read transaction) can back it. Implementations throw RaftError with
 * ERR_RAFT_COMPACTED for indexes folded into the snapshot and ERR_RAFT_UNAVAILABLE for indexes past
 * the end; the core relies on those two codes to decide between sending entries and a snapshot.
 */
export interface Storage {
  /** The persisted hard state and the membership as of the latest snapshot. */
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries in [lo, hi), trimmed to about maxSize bytes (at least one entry when lo < hi). */
  entries(lo: number, hi: number, maxSize: number): Entry[];
  /** Term of entry i; i may be firstIndex()-1 (the snapshot's index). */
  term(i: number): number;
  /** Index of the last entry (the snapshot index when the log is empty). */
  lastIndex(): number;
  /** Index of the first available entry (snapshot index + 1). */
  firstIndex(): number;
  /** The most recent snapshot; may throw ERR_RAFT_SNAPSHOT_TEMPORARILY_UNAVAILABLE. */
  snapshot(): Snapshot;
}

function cloneConfState(cs: ConfState): ConfState {
  return { voters: [...cs.voters], learners: [...cs.learners] };
}

/**
 * An in-memory Storage, used by tests and as the reference for a persistent one. `ents[0]` is a
 * dummy entry holding the snapshot's index and term, so term(firstIndex-1) is always answerable.
 */
export class MemoryStorage implements Storage {
  private hardState: HardState = emptyHardState();
  private snap: Snapshot = {
    data: new Uint8Array(0),
    metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } },
  };
  private ents: Entry[] = [{ term: 0, index: 0, type: 'normal', data: new Uint8Array(0) }];

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: { ...this.hardState }, confState: cloneConfState(this.snap.metadata.confState) };
  }

  setHardState(hs: HardState): void {
    this.hardState = { ...hs };
  }

  hardStateView(): HardState {
    return { ...this.hardState };
  }

  private offset(): number {
    return this.ents[0]!.index;
  }

  entries(lo: number, hi: number, maxSize: number): Entry[] {
    const off = this.offset();
    if (lo <= off) throw new RaftError('ERR_RAFT_COMPACTED', `entries: index ${lo} is compacted (first ${off + 1})`);
    if (hi > this.lastIndex() + 1) {
      throw new RaftError(
        'ERR_RAFT_UNAVAILABLE',
        `entries: index ${hi - 1} is past the last index ${this.lastIndex()}`,
      );
    }
    if (lo >= hi) return [];
    return limitSize(this.ents.slice(lo - off, hi - off), maxSize);
  }

  term(i: number): number {
    const off = this.offset();
    if (i < off) throw new RaftError('ERR_RAFT_COMPACTED', `term: index ${i} is compacted (first ${off + 1})`);
    if (i - off >= this.ents.length) {
      throw new RaftError('ERR_RAFT_UNAVAILABLE', `term: index ${i} is past the last index ${this.lastIndex()}`);
    }
    return this.ents[i - off]!.term;
  }

  lastIndex(): number {
    return this.offset() + this.ents.length - 1;
  }

  firstIndex(): number {
    return this.offset() + 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replaces the whole state with a snapshot received from the leader. */
  applySnapshot(snap: Snapshot): void {
    if (snap.metadata.index <= this.snap.metadata.index) {
      throw new RaftError(
        'ERR_RAFT_SNAP_OUT_OF_DATE',
        `snapshot at ${snap.metadata.index} is not newer than ${this.snap.metadata.index}`,
      );
    }
    this.snap = { data: snap.data, metadata: { ...snap.metadata, confState: cloneConfState(snap.metadata.confState) } };
    this.ents = [{ term: snap.metadata.term, index: snap.metadata.index, type: 'normal', data: new Uint8Array(0) }];
  }

  /**
   * Records a snapshot of the application state at applied index i (which must still be in the
   * log). Follow with compact() to free the entries it covers.
   */
  createSnapshot(i: number, cs: ConfState, data: Uint8Array): Snapshot {
    if (i <= this.snap.metadata.index) {
      throw new RaftError(
        'ERR_RAFT_SNAP_OUT_OF_DATE',
        `snapshot at ${i} is not newer than ${this.snap.metadata.index}`,
      );
    }
    if (i > this.lastIndex()) {
      throw new RaftError('ERR_RAFT_UNAVAILABLE', `snapshot index ${i} is past the last index ${this.lastIndex()}`);
    }
    const off = this.offset();
    this.snap = { data, metadata: { index: i, term: this.ents[i - off]!.term, confState: cloneConfState(cs) } };
    return this.snap;
  }

  /** Drops entries up to and including i; i becomes the dummy entry. */
  compact(i: number): void {
    const off = this.offset();
    if (i <= off) throw new RaftError('ERR_RAFT_COMPACTED', `compact: index ${i} is already compacted`);
    if (i > this.lastIndex()) {
      throw new RaftError('ERR_RAFT_UNAVAILABLE', `compact: index ${i} is past the last index ${this.lastIndex()}`);
    }
    const k = i - off;
    this.ents = [
      { term: this.ents[k]!.term, index: i, type: 'normal', data: new Uint8Array(0) },
      ...this.ents.slice(k + 1),
    ];
  }

  /**
   * Appends entries, overwriting any conflicting suffix. Entries already compacted are skipped.
   * The first new entry must not leave a gap after the current last index.
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0]!.index + entries.length - 1;
    if (last < first) return;
    let ents = entries;
    if (first > ents[0]!.index) ents = ents.slice(first - ents[0]!.index);
    const off = ents[0]!.index - this.offset();
    if (off > this.ents.length) {
      throw new RaftError(
        'ERR_RAFT_UNAVAILABLE',
        `append leaves a gap: last ${this.lastIndex()}, new ${ents[0]!.index}`,
      );
    }
    this.ents = this.ents.slice(0, off).concat(ents);
  }
}
