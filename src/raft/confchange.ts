import { RaftError } from './errors.ts';
import { Progress } from './progress.ts';
import type { ProgressTracker } from './tracker.ts';
import type { ConfChange } from './types.ts';

/**
 * Single-step membership changes. Only one node changes per configuration change, so any majority of
 * the old voters overlaps any majority of the new ones and no joint phase is needed; the leader
 * allows at most one unapplied change in its log (see Raft.pendingConfIndex).
 */

/**
 * Whether `cc` may be proposed against the current membership. Returns the reason as a typed error,
 * or undefined when allowed.
 */
export function checkConfChange(trk: ProgressTracker, cc: ConfChange): RaftError | undefined {
  switch (cc.type) {
    case 'removeNode':
      if (trk.voters.has(cc.nodeId) && trk.voters.size === 1) {
        return new RaftError('ERR_RAFT_INVALID_CONF_CHANGE', `removing node ${cc.nodeId} would leave no voters`);
      }
      return undefined;
    case 'addLearnerNode':
      if (trk.voters.has(cc.nodeId)) {
        return new RaftError(
          'ERR_RAFT_INVALID_CONF_CHANGE',
          `node ${cc.nodeId} is a voter; demoting a voter to learner is not supported (remove it instead)`,
        );
      }
      return undefined;
    case 'addNode':
      return undefined;
  }
}

/**
 * Applies a committed change to the tracker. Changes that are not allowed are ignored (every node
 * applies the same committed sequence, so every node ignores the same ones). Returns whether the
 * membership changed. New members start in probe state at `lastIndex + 1`.
 */
export function applyToTracker(trk: ProgressTracker, cc: ConfChange, lastIndex: number): boolean {
  if (checkConfChange(trk, cc)) return false;
  const id = cc.nodeId;
  switch (cc.type) {
    case 'addNode': {
      if (trk.voters.has(id)) return false;
      const pr = trk.progress.get(id);
      if (pr) {
        // Promotion: the learner keeps its replication progress.
        pr.isLearner = false;
        trk.learners.delete(id);
        trk.voters.add(id);
        return true;
      }
      trk.voters.add(id);
      trk.progress.set(id, newProgress(trk, lastIndex, false));
      return true;
    }
    case 'addLearnerNode': {
      if (trk.learners.has(id)) return false;
      trk.learners.add(id);
      trk.progress.set(id, newProgress(trk, lastIndex, true));
      return true;
    }
    case 'removeNode': {
      if (!trk.progress.has(id)) return false;
      trk.voters.delete(id);
      trk.learners.delete(id);
      trk.progress.delete(id);
      trk.votes.delete(id);
      return true;
    }
  }
}

function newProgress(trk: ProgressTracker, lastIndex: number, isLearner: boolean): Progress {
  const pr = new Progress(lastIndex + 1, trk.maxInflight, isLearner);
  // A new member has not had a chance to talk yet; do not let check-quorum count it as dead.
  pr.recentActive = true;
  return pr;
}
