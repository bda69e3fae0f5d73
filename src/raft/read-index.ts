import { majorityVoteResult } from './quorum.ts';
import type { Raft } from './raft.ts';
import type { Message, NodeId } from './types.ts';
import { NONE, makeMessage } from './types.ts';

const EMPTY = new Uint8Array(0);

/**
 * raft.go's ReadIndex handling on the leader (the queue of pending requests is `ReadOnly`, in
 * readonly.ts, as read_only.go): when a read may be answered, how safe mode confirms it with a
 * heartbeat round, and where the answer goes.
 */
export function stepLeaderReadIndex(r: Raft, m: Message): void {
  if (r.trk.isSingleton()) {
    respondToReadIndex(r, m, r.raftLog.committed);
    return;
  }
  // Until an entry of this term commits, our commit index may lag what earlier leaders
  // committed; answering with it could serve stale reads.
  if (!committedEntryInCurrentTerm(r)) {
    r.pendingReadIndexMessages.push(m);
    return;
  }
  handleReadIndex(r, m);
}

function handleReadIndex(r: Raft, m: Message): void {
  if (r.readOnlyOption === 'safe') {
    r.readOnly.addRequest(r.raftLog.committed, m);
    // The leader acknowledges itself; the read is confirmed once a quorum echoes the context.
    const acks = r.readOnly.recvAck(r.id, m.context);
    if (acks && quorumAcked(r, acks)) {
      for (const rs of r.readOnly.advance(m.context)) respondToReadIndex(r, rs.req, rs.index);
      return;
    }
    r.bcastHeartbeatWithCtx(m.context);
    return;
  }
  respondToReadIndex(r, m, r.raftLog.committed);
}

/** A heartbeat answer echoing a read's context: answer every read a quorum has now confirmed. */
export function recvReadIndexAck(r: Raft, m: Message): void {
  if (r.readOnlyOption !== 'safe' || !m.context) return;
  const acks = r.readOnly.recvAck(m.from, m.context);
  if (!acks || !quorumAcked(r, acks)) return;
  for (const rs of r.readOnly.advance(m.context)) respondToReadIndex(r, rs.req, rs.index);
}

/** Answers the reads held back at election, once this leader's first entry has committed. */
export function releasePendingReadIndexMessages(r: Raft): void {
  if (r.pendingReadIndexMessages.length === 0 || !committedEntryInCurrentTerm(r)) return;
  const msgs = r.pendingReadIndexMessages;
  r.pendingReadIndexMessages = [];
  for (const m of msgs) handleReadIndex(r, m);
}

function quorumAcked(r: Raft, acks: ReadonlySet<NodeId>): boolean {
  const votes = new Map<NodeId, boolean>();
  for (const id of acks) votes.set(id, true);
  return majorityVoteResult(r.trk.voterIds(), votes) === 'won';
}

/** A local request becomes a ReadState of this node; a forwarded one goes back to its follower. */
function respondToReadIndex(r: Raft, req: Message, index: number): void {
  if (req.from === NONE || req.from === r.id) {
    r.readStates.push({ index, requestCtx: req.context ?? EMPTY });
    return;
  }
  const resp = makeMessage({ to: req.from, type: 'readIndexResp', index });
  if (req.context) resp.context = req.context;
  r.send(resp);
}

function committedEntryInCurrentTerm(r: Raft): boolean {
  return r.raftLog.termOrZero(r.raftLog.committed) === r.term;
}
