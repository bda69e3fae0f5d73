import { Progress } from './progress.ts';
import { majorityCommitted, majorityVoteResult, type VoteResult } from './quorum.ts';
import type { ConfState, NodeId } from './types.ts';

/**
 * The membership as the raft core currently sees it (voters and learners), the leader's progress of
 * each member, and the votes of an ongoing election. Iteration is always in ascending id order so
 * every run with the same inputs emits the same messages.
 */
export class ProgressTracker {
  readonly voters = new Set<NodeId>();
  readonly learners = new Set<NodeId>();
  readonly progress = new Map<NodeId, Progress>();
  readonly votes = new Map<NodeId, boolean>();
  readonly maxInflight: number;

  constructor(maxInflight: number) {
    this.maxInflight = maxInflight;
  }

  confState(): ConfState {
    return { voters: sortedIds(this.voters), learners: sortedIds(this.learners) };
  }

  voterIds(): NodeId[] {
    return sortedIds(this.voters);
  }

  ids(): NodeId[] {
    return [...this.progress.keys()].sort((a, b) => a - b);
  }

  isSingleton(): boolean {
    return this.voters.size === 1;
  }

  /** Calls fn for every member (voters and learners), in id order. */
  visit(fn: (id: NodeId, pr: Progress) => void): void {
    for (const id of this.ids()) fn(id, this.progress.get(id)!);
  }

  committed(): number {
    return majorityCommitted(this.voterIds(), (id) => this.progress.get(id)?.match);
  }

  /** Whether a majority of voters were heard from recently (the leader counts itself). */
  quorumActive(selfId: NodeId): boolean {
    const votes = new Map<NodeId, boolean>();
    for (const id of this.voters) {
      const pr = this.progress.get(id);
      votes.set(id, id === selfId || (pr?.recentActive ?? false));
    }
    return majorityVoteResult(this.voterIds(), votes) === 'won';
  }

  resetVotes(): void {
    this.votes.clear();
  }

  /** Records the first answer of each node; repeats (duplicated messages) change nothing. */
  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  /** Counts only voters' answers: a learner's answer, if any, is ignored. */
  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const id of this.voters) {
      const v = this.votes.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    return { granted, rejected, result: majorityVoteResult(this.voterIds(), this.votes) };
  }
}

export function sortedIds(ids: Iterable<NodeId>): NodeId[] {
  return [...ids].sort((a, b) => a - b);
}
