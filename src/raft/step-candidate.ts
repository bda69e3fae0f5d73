import { proposalDropped } from './errors.ts';
import type { Raft } from './raft.ts';
import { handleLeaderMessage } from './step-follower.ts';
import type { Message, MessageType } from './types.ts';
import { NONE } from './types.ts';

/**
 * raft.go's stepCandidate, for candidates and pre-candidates alike: count the answers to our own
 * kind of vote request, and follow any leader of our term that shows itself.
 */
export function stepCandidate(r: Raft, m: Message): void {
  const myVoteResp: MessageType = r.state === 'preCandidate' ? 'preVoteResp' : 'voteResp';
  switch (m.type) {
    case 'prop':
      throw proposalDropped('no leader (election in progress)');
    case 'readIndex':
      throw proposalDropped('no leader (election in progress)');
    case 'app':
    case 'heartbeat':
    case 'snap':
      // Someone won this term: follow it, and take its message as its follower would.
      r.becomeFollower(m.term, m.from);
      handleLeaderMessage(r, m);
      return;
    case 'timeoutNow':
      return;
  }
  if (m.type !== myVoteResp) return;
  const res = r.poll(m.from, !m.reject);
  if (res === 'won') {
    if (r.state === 'preCandidate') {
      r.campaign('election');
    } else {
      r.becomeLeader();
      r.bcastAppend();
    }
  } else if (res === 'lost') {
    // A pre-candidate gives up at its current term; a candidate keeps the term it started.
    r.becomeFollower(r.term, NONE);
  }
}
