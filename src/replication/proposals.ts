/**
 * The callers waiting for their proposals. Each proposal gets an id (this member, a random
 * incarnation, a sequence number) that travels in its log entry; when a member applies the entry,
 * the caller is answered only if the id is one of this incarnation's, so an entry proposed before a
 * restart never answers anyone after it. A caller whose entry is lost fails at its deadline.
 */
import { isRaftError } from '../raft/index.ts';
import { replicationError } from './errors.ts';
import { idKey, type ProposalId } from './proposal.ts';

interface Waiter {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  deadline: number;
}

export class Proposals {
  private readonly waiters = new Map<string, Waiter>();
  private seq = 0;

  constructor(
    private readonly member: number,
    readonly incarnation: number,
  ) {}

  nextId(): ProposalId {
    return { m: this.member, i: this.incarnation, s: ++this.seq };
  }

  /**
   * Registers a waiter for `id` and runs `send` (which hands the proposal to raft); resolves with
   * the answer given when it is applied. Raft dropping it (no leader) fails with ERR_NO_LEADER.
   */
  wait<T>(id: ProposalId, deadline: number, send: () => void): Promise<T> {
    const key = idKey(id);
    const p = new Promise<T>((resolve, reject) => {
      this.waiters.set(key, { resolve: resolve as (v: unknown) => void, reject, deadline });
    });
    try {
      send();
    } catch (err) {
      this.waiters.delete(key);
      if (isRaftError(err, 'ERR_RAFT_PROPOSAL_DROPPED')) throw replicationError('ERR_NO_LEADER');
      throw err;
    }
    return p;
  }

  private take(id: ProposalId): Waiter | undefined {
    if (id.m !== this.member || id.i !== this.incarnation) return undefined;
    const key = idKey(id);
    const w = this.waiters.get(key);
    this.waiters.delete(key);
    return w;
  }

  answer(id: ProposalId, value: unknown): void {
    this.take(id)?.resolve(value);
  }

  answerError(id: ProposalId, err: unknown): void {
    this.take(id)?.reject(err);
  }

  /** Fails every caller whose deadline passed with etcd's "request timed out". */
  expire(now: number): void {
    const timeout = replicationError('ERR_TIMEOUT');
    for (const [k, w] of this.waiters) {
      if (w.deadline <= now) {
        this.waiters.delete(k);
        w.reject(timeout);
      }
    }
  }

  rejectAll(e: unknown): void {
    const all = [...this.waiters.values()];
    this.waiters.clear();
    for (const w of all) w.reject(e);
  }
}
