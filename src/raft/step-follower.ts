import { proposalDropped } from './errors.ts';
import type { Raft } from './raft.ts';
import type { Message } from './types.ts';
import { NONE, makeMessage } from './types.ts';

const EMPTY = new Uint8Array(0);

/**
 * raft.go's stepFollower: take the leader's appends, heartbeats and snapshots, and forward what
 * only the leader can serve (proposals, transfers, read requests) to it.
 */
export function stepFollower(r: Raft, m: Message): void {
  switch (m.type) {
    case 'prop':
      if (r.lead === NONE) throw proposalDropped('no leader');
      r.send({ ...m, to: r.lead, term: 0 });
      return;
    case 'app':
    case 'heartbeat':
    case 'snap':
      // The leader of our term is alive: no election for another timeout.
      r.electionElapsed = 0;
      r.lead = m.from;
      handleLeaderMessage(r, m);
      return;
    case 'transferLeader':
      if (r.lead === NONE) return;
      r.send({ ...m, to: r.lead, term: 0 });
      return;
    case 'timeoutNow':
      // The leader wants us to take over now, without waiting for a timeout or a pre-vote.
      r.hup('transfer');
      return;
    case 'readIndex':
      if (r.lead === NONE) throw proposalDropped('no leader to serve a read index');
      r.send({ ...m, to: r.lead, term: 0 });
      return;
    case 'readIndexResp':
      r.readStates.push({ index: m.index, requestCtx: m.context ?? EMPTY });
      return;
  }
}

/** An append, heartbeat or snapshot from the leader of our term, handled as its follower. */
export function handleLeaderMessage(r: Raft, m: Message): void {
  if (m.type === 'app') handleAppendEntries(r, m);
  else if (m.type === 'heartbeat') handleHeartbeat(r, m);
  else handleSnapshot(r, m);
}

/** Appends the leader's entries if our log matches at the previous index; else hints where to retry. */
function handleAppendEntries(r: Raft, m: Message): void {
  if (m.index < r.raftLog.committed) {
    r.send(makeMessage({ to: m.from, type: 'appResp', index: r.raftLog.committed }));
    return;
  }
  const lastNew = r.raftLog.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
  if (lastNew !== undefined) {
    r.send(makeMessage({ to: m.from, type: 'appResp', index: lastNew }));
    return;
  }
  const hint = r.raftLog.findConflictByTerm(Math.min(m.index, r.raftLog.lastIndex()), m.logTerm);
  r.send(
    makeMessage({
      to: m.from,
      type: 'appResp',
      index: m.index,
      reject: true,
      rejectHint: hint.index,
      logTerm: hint.term,
    }),
  );
}

function handleHeartbeat(r: Raft, m: Message): void {
  r.raftLog.commitTo(m.commit);
  const resp = makeMessage({ to: m.from, type: 'heartbeatResp' });
  if (m.context) resp.context = m.context;
  r.send(resp);
}

function handleSnapshot(r: Raft, m: Message): void {
  const s = m.snapshot!;
  if (r.restore(s)) {
    r.send(makeMessage({ to: m.from, type: 'appResp', index: r.raftLog.lastIndex() }));
  } else {
    r.send(makeMessage({ to: m.from, type: 'appResp', index: r.raftLog.committed }));
  }
}
