import type { NodeId } from './types.ts';

/** Outcome of counting votes (or acknowledgements) within one majority configuration. */
export type VoteResult = 'pending' | 'lost' | 'won';

/**
 * The highest index acknowledged by a majority of `voters`. Only voters are passed in, which is
 * exactly why learners can never help commit an entry.
 */
export function majorityCommitted(voters: readonly NodeId[], matchOf: (id: NodeId) => number | undefined): number {
  if (voters.length === 0) return 0;
  const matches = voters.map((id) => matchOf(id) ?? 0).sort((a, b) => b - a);
  return matches[Math.floor(voters.length / 2)]!;
}

/** Won once a majority granted, lost once a majority can no longer be reached. */
export function majorityVoteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.length === 0) return 'lost';
  const q = Math.floor(voters.length / 2) + 1;
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  if (granted >= q) return 'won';
  if (granted + missing >= q) return 'pending';
  return 'lost';
}
