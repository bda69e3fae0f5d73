import { RaftError } from './errors.ts';
import type { Status } from './status.ts';
import type { NodeId } from './types.ts';

/** etcd's rule of thumb: a learner may become a voter once it holds 90% of the leader's log. */
export const DEFAULT_PROMOTION_THRESHOLD = 0.9;

export type PromotionVerdict =
  | { ok: true; learnerMatch: number; leaderMatch: number }
  | {
      ok: false;
      reason: 'notLeader' | 'notMember' | 'notLearner' | 'lagging';
      learnerMatch: number;
      leaderMatch: number;
    };

/**
 * Decides, from the leader's status(), whether promoting `learnerId` is safe enough. Promoting a
 * learner far behind would add a voter that cannot acknowledge new entries for a while, which can
 * stall commits (e.g. in a 2-node cluster it halts them until the learner catches up).
 */
export function checkLearnerPromotion(
  status: Status,
  learnerId: NodeId,
  threshold: number = DEFAULT_PROMOTION_THRESHOLD,
): PromotionVerdict {
  if (typeof threshold !== 'number' || !(threshold > 0 && threshold <= 1)) {
    throw new RaftError('ERR_RAFT_INVALID_CONFIG', 'promotion threshold must be in (0, 1]');
  }
  const progress = status.progress;
  if (!progress) return { ok: false, reason: 'notLeader', learnerMatch: 0, leaderMatch: 0 };
  const leaderMatch = progress.get(status.id)?.match ?? 0;
  const pr = progress.get(learnerId);
  if (!pr) return { ok: false, reason: 'notMember', learnerMatch: 0, leaderMatch };
  if (!pr.isLearner) return { ok: false, reason: 'notLearner', learnerMatch: pr.match, leaderMatch };
  if (leaderMatch === 0 || pr.match < leaderMatch * threshold) {
    return { ok: false, reason: 'lagging', learnerMatch: pr.match, leaderMatch };
  }
  return { ok: true, learnerMatch: pr.match, leaderMatch };
}
