import type { ProgressState } from './progress.ts';
import type { Raft } from './raft.ts';
import type { ConfState, HardState, NodeId, SoftState } from './types.ts';

/** The leader's view of one peer. */
export interface PeerStatus {
  match: number;
  next: number;
  state: ProgressState;
  isLearner: boolean;
  recentActive: boolean;
  /** Appends in flight (replicate state). */
  inflight: number;
  paused: boolean;
  pendingSnapshot: number;
}

/** A snapshot of a node's raft state, for monitoring and for membership decisions. */
export interface Status {
  id: NodeId;
  hardState: HardState;
  softState: SoftState;
  applied: number;
  lastIndex: number;
  leadTransferee: NodeId;
  config: ConfState;
  /** Every member's replication progress; present only on the leader. */
  progress?: Map<NodeId, PeerStatus>;
}

export function getStatus(r: Raft): Status {
  const st: Status = {
    id: r.id,
    hardState: r.hardState(),
    softState: r.softState(),
    applied: r.raftLog.applied,
    lastIndex: r.raftLog.lastIndex(),
    leadTransferee: r.leadTransferee,
    config: r.trk.confState(),
  };
  if (r.state === 'leader') {
    const progress = new Map<NodeId, PeerStatus>();
    r.trk.visit((id, pr) => {
      progress.set(id, {
        match: pr.match,
        next: pr.next,
        state: pr.state,
        isLearner: pr.isLearner,
        recentActive: pr.recentActive,
        inflight: pr.inflights.count(),
        paused: pr.isPaused(),
        pendingSnapshot: pr.pendingSnapshot,
      });
    });
    st.progress = progress;
  }
  return st;
}
