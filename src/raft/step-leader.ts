import { checkConfChange } from './confchange.ts';
import { decodeConfChange } from './codec.ts';
import { RaftError, proposalDropped } from './errors.ts';
import type { Progress } from './progress.ts';
import type { Raft } from './raft.ts';
import { recvReadIndexAck, releasePendingReadIndexMessages, stepLeaderReadIndex } from './read-index.ts';
import type { ConfChange, Message, NodeId } from './types.ts';
import { NONE } from './types.ts';

/**
 * raft.go's stepLeader: what a leader does with a message of its own term (or a local one) once
 * `Raft.step` has dealt with terms and votes. Local messages first, then answers from peers, which
 * count only from members of the current configuration.
 */
export function stepLeader(r: Raft, m: Message): void {
  switch (m.type) {
    case 'beat':
      r.bcastHeartbeat();
      return;
    case 'checkQuorum':
      if (!r.trk.quorumActive(r.id)) r.becomeFollower(r.term, NONE);
      r.trk.visit((id, pr) => {
        if (id !== r.id) pr.recentActive = false;
      });
      return;
    case 'prop':
      handleProposal(r, m);
      return;
    case 'readIndex':
      stepLeaderReadIndex(r, m);
      return;
  }

  const pr = r.trk.progress.get(m.from);
  if (!pr) return;
  switch (m.type) {
    case 'appResp':
      handleAppendResponse(r, m, pr);
      return;
    case 'heartbeatResp':
      pr.recentActive = true;
      pr.msgAppFlowPaused = false;
      if (pr.match < r.raftLog.lastIndex() || pr.state === 'probe') r.sendAppend(m.from);
      recvReadIndexAck(r, m);
      return;
    case 'snapStatus':
      if (pr.state !== 'snapshot') return;
      if (m.reject) pr.pendingSnapshot = 0;
      pr.becomeProbe();
      // Wait for a heartbeat response before probing, in case the follower is still busy.
      pr.msgAppFlowPaused = true;
      return;
    case 'unreachable':
      // Optimistic streaming probably lost messages; fall back to probing.
      if (pr.state === 'replicate') pr.becomeProbe();
      return;
    case 'transferLeader':
      handleTransferLeader(r, m.from, pr);
      return;
  }
}

/** Appends a proposal's entries, refusing it whole when it cannot be taken now. */
function handleProposal(r: Raft, m: Message): void {
  if (m.entries.length === 0) throw new RaftError('ERR_RAFT_INVALID_MESSAGE', 'proposal without entries');
  if (!r.trk.progress.has(r.id)) throw proposalDropped('this leader was removed from the configuration');
  if (r.leadTransferee !== NONE) throw proposalDropped(`leadership is being transferred to ${r.leadTransferee}`);
  if (r.leavingAfterRemoval) throw proposalDropped('this leader is being removed from the configuration');
  let ccAt = -1;
  let removesSelf = false;
  for (let i = 0; i < m.entries.length; i++) {
    const e = m.entries[i]!;
    if (e.type !== 'confChange') continue;
    if (ccAt >= 0) {
      throw new RaftError('ERR_RAFT_JOINT_UNSUPPORTED', 'only one configuration change per proposal is supported');
    }
    let cc: ConfChange;
    try {
      cc = decodeConfChange(e.data);
    } catch (err) {
      throw new RaftError('ERR_RAFT_INVALID_CONF_CHANGE', 'conf change entry does not decode', { cause: err });
    }
    if (r.pendingConfIndex > r.raftLog.applied) {
      throw proposalDropped(`a configuration change at index ${r.pendingConfIndex} is not applied yet`);
    }
    const err = checkConfChange(r.trk, cc);
    if (err) throw err;
    ccAt = i;
    removesSelf = cc.type === 'removeNode' && cc.nodeId === r.id;
  }
  const first = r.raftLog.lastIndex() + 1;
  r.appendEntry(m.entries.map((e) => ({ term: 0, index: 0, type: e.type, data: e.data })));
  if (ccAt >= 0) r.pendingConfIndex = first + ccAt;
  if (removesSelf) r.leavingAfterRemoval = true;
  r.bcastAppend();
}

/** A follower accepted or rejected an append: move its progress, commit, and keep it fed. */
function handleAppendResponse(r: Raft, m: Message, pr: Progress): void {
  pr.recentActive = true;
  if (m.reject) {
    let nextProbeIdx = m.rejectHint;
    if (m.logTerm > 0) {
      // Skip every entry of ours whose term is above the follower's term at the hint: none of
      // them can match, so one round trip per term replaces one per entry.
      nextProbeIdx = r.raftLog.findConflictByTerm(m.rejectHint, m.logTerm).index;
    }
    if (pr.maybeDecrTo(m.index, nextProbeIdx)) {
      if (pr.state === 'replicate') pr.becomeProbe();
      r.sendAppend(m.from);
    }
    return;
  }
  const oldPaused = pr.isPaused();
  if (!(pr.maybeUpdate(m.index) || (pr.match === m.index && pr.state === 'probe'))) return;
  if (pr.state === 'probe') {
    pr.becomeReplicate();
  } else if (pr.state === 'snapshot' && pr.match + 1 >= r.raftLog.firstIndex()) {
    // Caught up far enough (by the snapshot or otherwise) to continue from the log.
    pr.becomeProbe();
    pr.becomeReplicate();
  } else if (pr.state === 'replicate') {
    pr.inflights.freeLE(m.index);
  }
  if (r.maybeCommit()) {
    releasePendingReadIndexMessages(r);
    r.bcastAppend();
  } else if (oldPaused) {
    r.sendAppend(m.from);
  }
  while (r.maybeSendAppend(m.from, false)) {
    // keep streaming while the window allows
  }
  if (m.from === r.leadTransferee && pr.match === r.raftLog.lastIndex()) r.sendTimeoutNow(m.from);
}

/** Starts handing leadership to `transferee` once its log is as long as ours. */
function handleTransferLeader(r: Raft, transferee: NodeId, pr: Progress): void {
  // Leadership is never handed to a learner: it cannot win a vote and must not try.
  if (pr.isLearner) return;
  if (r.leadTransferee !== NONE) {
    if (r.leadTransferee === transferee) return;
    r.leadTransferee = NONE;
  }
  if (transferee === r.id) return;
  r.electionElapsed = 0;
  r.leadTransferee = transferee;
  if (pr.match === r.raftLog.lastIndex()) r.sendTimeoutNow(transferee);
  else r.sendAppend(transferee);
}
