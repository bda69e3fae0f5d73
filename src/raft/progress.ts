import { raftInvariant } from './errors.ts';

/**
 * Bounded window of append messages in flight to one follower, each remembered by the last index it
 * carried. Bounding it keeps a slow follower from making the leader buffer an unbounded backlog.
 */
export class Inflights {
  private readonly buf: number[] = [];
  readonly size: number;

  constructor(size: number) {
    this.size = size;
  }

  add(lastIndex: number): void {
    raftInvariant(!this.full(), 'cannot add into a full inflights window');
    this.buf.push(lastIndex);
  }

  /** Frees every message whose last index is <= to (the follower acknowledged them). */
  freeLE(to: number): void {
    let n = 0;
    while (n < this.buf.length && this.buf[n]! <= to) n++;
    if (n > 0) this.buf.splice(0, n);
  }

  full(): boolean {
    return this.buf.length >= this.size;
  }

  count(): number {
    return this.buf.length;
  }

  reset(): void {
    this.buf.length = 0;
  }
}

/**
 * How the leader talks to a follower:
 * - probe: unsure where the logs agree; one append at a time until an answer comes back;
 * - replicate: logs agree up to `match`; stream appends optimistically, bounded by inflights;
 * - snapshot: the needed entries are compacted; wait for the snapshot to be reported.
 */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** The leader's bookkeeping for one peer (itself included). */
export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** Index of the snapshot in flight while in 'snapshot' state (0 otherwise). */
  pendingSnapshot = 0;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  /** In probe: an append is out; in replicate: the inflights window is full. */
  msgAppFlowPaused = false;
  readonly inflights: Inflights;
  isLearner: boolean;

  constructor(next: number, maxInflight: number, isLearner: boolean) {
    this.next = next;
    this.inflights = new Inflights(maxInflight);
    this.isLearner = isLearner;
  }

  private resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      // The snapshot (if it arrived) covers pendingSnapshot; probe right after it.
      const pending = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /** Records that an append carrying `count` entries ending at `lastIndex` was sent. */
  sentEntries(count: number, lastIndex: number): void {
    if (this.state === 'replicate') {
      if (count > 0) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex);
      }
      this.msgAppFlowPaused = this.inflights.full();
    } else if (this.state === 'probe') {
      if (count > 0) this.msgAppFlowPaused = true;
    } else {
      raftInvariant(false, `sending entries in state ${this.state}`);
    }
  }

  /** An acknowledgement up to n arrived. Returns whether match moved. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.msgAppFlowPaused = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /**
   * The follower rejected an append at index `rejected`, hinting its log may match at `matchHint`.
   * Returns false for stale rejections (answers to appends we have since moved past).
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
      case 'replicate':
        return this.msgAppFlowPaused;
      case 'snapshot':
        return true;
    }
  }
}
