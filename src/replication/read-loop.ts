/**
 * etcd's linearizable read loop. A read may be served once the leader has confirmed, with a
 * quorum, a commit index at least as new as the moment the read arrived (ReadIndex), and this
 * member has applied up to that index. One ReadIndex round is in flight at a time; every read that
 * arrived before it was sent shares its answer, so a burst of reads costs one round.
 */
import { isRaftError } from '../raft/index.ts';
import { replicationError } from './errors.ts';

interface Waiter {
  resolve: () => void;
  reject: (e: unknown) => void;
  deadline: number;
}

export interface ReadLoopHost {
  /** Asks raft for a read index under `ctx` (RawNode.readIndex); throws when no leader is known. */
  readIndex(ctx: Uint8Array): void;
  /** The Ready loop should run (raft has a message to send). */
  kick(): void;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export class ReadLoop {
  private queue: Waiter[] = [];
  private inflight: { ctx: string; waiters: Waiter[]; deadline: number } | undefined;
  private awaitingApply: { index: number; waiters: Waiter[] }[] = [];
  private seq = 0;

  constructor(
    private readonly host: ReadLoopHost,
    private readonly incarnation: number,
  ) {}

  /** Resolves once a linearizable read may be served; rejects with ERR_TIMEOUT after `deadline`. */
  barrier(deadline: number): Promise<void> {
    const p = new Promise<void>((resolve, reject) => this.queue.push({ resolve, reject, deadline }));
    if (this.inflight === undefined) this.send(deadline);
    return p;
  }

  private send(deadline: number): void {
    if (this.inflight !== undefined || this.queue.length === 0) return;
    const waiters = this.queue;
    this.queue = [];
    const ctx = new Uint8Array(8);
    const v = new DataView(ctx.buffer);
    v.setUint32(0, this.incarnation >>> 0);
    v.setUint32(4, ++this.seq >>> 0);
    try {
      this.host.readIndex(ctx);
    } catch (err) {
      const e = isRaftError(err, 'ERR_RAFT_PROPOSAL_DROPPED') ? replicationError('ERR_NO_LEADER') : err;
      for (const w of waiters) w.reject(e);
      return;
    }
    this.inflight = { ctx: hex(ctx), waiters, deadline };
    this.host.kick();
  }

  /** Raft answered a ReadIndex request (a ReadState of a Ready). */
  arrived(ctx: Uint8Array, index: number, deadline: number): void {
    const b = this.inflight;
    if (b === undefined || b.ctx !== hex(ctx)) return;
    this.inflight = undefined;
    this.awaitingApply.push({ index, waiters: b.waiters });
    this.send(deadline);
  }

  /** Serves every read whose index this member has applied. */
  applied(applied: number): void {
    const ready = this.awaitingApply.filter((a) => a.index <= applied);
    if (ready.length === 0) return;
    this.awaitingApply = this.awaitingApply.filter((a) => a.index > applied);
    for (const a of ready) for (const w of a.waiters) w.resolve();
  }

  /** Fails reads past their deadline; a lost ReadIndex round is retried for the reads queued since. */
  expire(now: number, nextDeadline: number): void {
    const timeout = replicationError('ERR_TIMEOUT');
    const b = this.inflight;
    if (b !== undefined && b.deadline <= now) {
      this.inflight = undefined;
      for (const w of b.waiters) w.reject(timeout);
      this.send(nextDeadline);
    }
    for (const a of this.awaitingApply) {
      const expired = a.waiters.filter((w) => w.deadline <= now);
      if (expired.length === 0) continue;
      a.waiters = a.waiters.filter((w) => w.deadline > now);
      for (const w of expired) w.reject(timeout);
    }
    this.awaitingApply = this.awaitingApply.filter((a) => a.waiters.length > 0);
  }

  rejectAll(e: unknown): void {
    for (const w of this.queue) w.reject(e);
    this.queue = [];
    if (this.inflight) for (const w of this.inflight.waiters) w.reject(e);
    this.inflight = undefined;
    for (const b of this.awaitingApply) for (const w of b.waiters) w.reject(e);
    this.awaitingApply = [];
  }
}
