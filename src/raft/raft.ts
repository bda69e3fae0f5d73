import { applyToTracker, checkConfChange } from './confchange.ts';
import { decodeConfChange } from './codec.ts';
import { RaftError, isRaftError, raftInvariant } from './errors.ts';
import { RaftLog } from './log.ts';
import { Progress } from './progress.ts';
import { majorityVoteResult } from './quorum.ts';
import { ReadOnly } from './readonly.ts';
import type { Storage } from './storage.ts';
import { ProgressTracker } from './tracker.ts';
import type {
  ConfChange, ConfState, Entry, HardState, Message, MessageType, NodeId, ReadOnlyOption, ReadState, Snapshot,
  SoftState, StateType,
} from './types.ts';
import { NONE, isEmptyHardState, isEmptySnapshot, makeMessage } from './types.ts';

/** Options of a raft node (the RawNode passes them through). */
export interface RaftOptions {
  /** This node's id, a positive integer, unique in the cluster and never reused. */
  id: NodeId;
  storage: Storage;
  /** Ticks without hearing from a leader before a follower campaigns (randomized in [n, 2n)). */
  electionTick: number;
  /** Ticks between the leader's heartbeats; must be smaller than electionTick. */
  heartbeatTick: number;
  /** Last index the application already applied (on restart); defaults to the snapshot index. */
  applied?: number;
  /** Byte budget of one append message (at least one entry is always sent). Default 1 MiB. */
  maxSizePerMsg?: number;
  /** Byte budget of committed entries handed out by one Ready. Default 64 MiB. */
  maxCommittedSizePerReady?: number;
  /** Appends in flight to one follower in replicate state. Default 256. */
  maxInflightMsgs?: number;
  /** Leader steps down when it has not heard from a quorum within an election timeout. */
  checkQuorum?: boolean;
  /** Run a pre-election first, so a partitioned node cannot bump the term and disrupt the cluster. */
  preVote?: boolean;
  /** 'safe' confirms leadership with a heartbeat round per read; 'leaseBased' trusts check-quorum. */
  readOnlyOption?: ReadOnlyOption;
  /** Source of randomness for election timeouts, in [0, 1). Tests pass a seeded one. */
  random?: () => number;
}

type CampaignKind = 'preElection' | 'election' | 'transfer';

function invalidConfig(msg: string): never {
  throw new RaftError('ERR_RAFT_INVALID_CONFIG', msg);
}

function posInt(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) invalidConfig(`${name} must be a positive integer`);
  return v;
}

function dropped(why: string): RaftError {
  return new RaftError('ERR_RAFT_PROPOSAL_DROPPED', `proposal dropped: ${why}`);
}

function voteRespType(t: MessageType): MessageType {
  return t === 'vote' ? 'voteResp' : 'preVoteResp';
}

const EMPTY = new Uint8Array(0);

/**
 * The raft state machine. It performs no I/O: inputs are ticks and messages, outputs are queued in
 * `msgs`, `readStates` and the log's unstable part, which RawNode packages into a Ready.
 */
export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  readStates: ReadState[] = [];
  readonly raftLog: RaftLog;
  readonly maxMsgSize: number;
  trk: ProgressTracker;
  state: StateType = 'follower';
  /** Whether this node is a learner in its own view of the membership. */
  isLearner = false;
  msgs: Message[] = [];
  lead: NodeId = NONE;
  /** Target of an ongoing leadership transfer (leader only). */
  leadTransferee: NodeId = NONE;
  /**
   * Index of the newest conf change that may still be unapplied. A new one is refused until the
   * node has applied up to here, so at most one membership change is ever in flight.
   */
  pendingConfIndex = 0;
  /**
   * This leader has an unapplied change removing itself. It then appends nothing more, so when it
   * steps down its log is no longer than the log of the voters that committed the removal, and it
   * can vote for them: otherwise a 2-voter cluster removing its leader could wait forever for a
   * vote from a node whose log is longer but which may no longer campaign.
   */
  leavingAfterRemoval = false;
  readOnly = new ReadOnly();
  readonly readOnlyOption: ReadOnlyOption;
  /** ReadIndex requests held back until the leader has committed an entry of its own term. */
  pendingReadIndexMessages: Message[] = [];
  electionElapsed = 0;
  heartbeatElapsed = 0;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly heartbeatTimeout: number;
  readonly electionTimeout: number;
  randomizedElectionTimeout = 0;
  private readonly random: () => number;

  constructor(opts: RaftOptions) {
    if (typeof opts !== 'object' || opts === null) invalidConfig('options must be an object');
    this.id = posInt(opts.id, 'id');
    this.heartbeatTimeout = posInt(opts.heartbeatTick, 'heartbeatTick');
    this.electionTimeout = posInt(opts.electionTick, 'electionTick');
    if (this.electionTimeout <= this.heartbeatTimeout) invalidConfig('electionTick must be greater than heartbeatTick');
    const maxInflight = posInt(opts.maxInflightMsgs ?? 256, 'maxInflightMsgs');
    this.maxMsgSize = posInt(opts.maxSizePerMsg ?? 1 << 20, 'maxSizePerMsg');
    const maxCommitted = posInt(opts.maxCommittedSizePerReady ?? 64 << 20, 'maxCommittedSizePerReady');
    this.checkQuorum = opts.checkQuorum ?? false;
    this.preVote = opts.preVote ?? false;
    this.readOnlyOption = opts.readOnlyOption ?? 'safe';
    if (this.readOnlyOption !== 'safe' && this.readOnlyOption !== 'leaseBased') {
      invalidConfig(`readOnlyOption must be 'safe' or 'leaseBased'`);
    }
    if (this.readOnlyOption === 'leaseBased' && !this.checkQuorum) {
      invalidConfig('readOnlyOption leaseBased requires checkQuorum');
    }
    if (typeof this.checkQuorum !== 'boolean' || typeof this.preVote !== 'boolean') {
      invalidConfig('checkQuorum and preVote must be booleans');
    }
    this.random = opts.random ?? Math.random;
    if (typeof this.random !== 'function') invalidConfig('random must be a function');
    if (typeof opts.storage !== 'object' || opts.storage === null) invalidConfig('storage is required');

    this.raftLog = new RaftLog(opts.storage, maxCommitted);
    const { hardState, confState } = opts.storage.initialState();
    this.trk = new ProgressTracker(maxInflight);
    this.resetTracker(confState);
    if (!isEmptyHardState(hardState)) this.loadState(hardState);
    if (opts.applied !== undefined && opts.applied > 0) {
      const applied = opts.applied;
      if (!Number.isSafeInteger(applied) || applied < this.raftLog.applied || applied > this.raftLog.committed) {
        invalidConfig(`applied ${applied} must be within [${this.raftLog.applied}, ${this.raftLog.committed}]`);
      }
      this.raftLog.appliedTo(applied);
    }
    this.becomeFollower(this.term, NONE);
  }

  // ---- views -------------------------------------------------------------------------------

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.raftLog.committed };
  }

  softState(): SoftState {
    return { lead: this.lead, raftState: this.state };
  }

  /** A voter in its own configuration that is not waiting for a snapshot may campaign. */
  promotable(): boolean {
    const pr = this.trk.progress.get(this.id);
    return pr !== undefined && !pr.isLearner && !this.raftLog.unstable.snapshot;
  }

  private loadState(hs: HardState): void {
    if (hs.commit < this.raftLog.committed || hs.commit > this.raftLog.lastIndex()) {
      throw new RaftError('ERR_RAFT_PANIC',
        `stored commit ${hs.commit} is outside [${this.raftLog.committed}, ${this.raftLog.lastIndex()}]`);
    }
    this.raftLog.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  /** Rebuilds membership from a ConfState (startup and snapshot restore). */
  private resetTracker(cs: ConfState): void {
    const trk = new ProgressTracker(this.trk.maxInflight);
    const next = this.raftLog.lastIndex() + 1;
    for (const v of cs.voters) {
      trk.voters.add(v);
      trk.progress.set(v, new Progress(next, trk.maxInflight, false));
    }
    for (const l of cs.learners) {
      if (trk.voters.has(l)) continue;
      trk.learners.add(l);
      trk.progress.set(l, new Progress(next, trk.maxInflight, true));
    }
    this.trk = trk;
    this.isLearner = trk.learners.has(this.id);
  }

  // ---- sending -----------------------------------------------------------------------------

  private send(m: Message): void {
    if (m.from === NONE) m.from = this.id;
    if (m.type === 'vote' || m.type === 'voteResp' || m.type === 'preVote' || m.type === 'preVoteResp') {
      // Election messages carry the term being campaigned for, which may differ from ours.
      raftInvariant(m.term !== 0, `term should be set when sending ${m.type}`);
    } else {
      raftInvariant(m.term === 0, `term should not be set when sending ${m.type} (was ${m.term})`);
      // Forwarded proposals and read requests are the leader's business, not tied to our term.
      if (m.type !== 'prop' && m.type !== 'readIndex') m.term = this.term;
    }
    this.msgs.push(m);
  }

  sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  /**
   * Sends the entries `to` is missing, if its flow control allows. With sendIfEmpty false, nothing is
   * sent when there are no new entries. Returns whether a message went out.
   */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.trk.progress.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    let prevTerm: number;
    try {
      prevTerm = this.raftLog.term(prevIndex);
    } catch (err) {
      if (isRaftError(err, 'ERR_RAFT_COMPACTED')) return this.maybeSendSnapshot(to, pr);
      throw err;
    }
    let ents: Entry[] = [];
    // A throttled follower still gets empty appends, so lost messages cannot stall it forever.
    if (pr.state !== 'replicate' || !pr.inflights.full()) {
      try {
        ents = this.raftLog.entries(pr.next, this.maxMsgSize);
      } catch (err) {
        if (isRaftError(err, 'ERR_RAFT_COMPACTED')) return this.maybeSendSnapshot(to, pr);
        throw err;
      }
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    this.send(makeMessage({
      to, type: 'app', index: prevIndex, logTerm: prevTerm, entries: ents, commit: this.raftLog.committed,
    }));
    pr.sentEntries(ents.length, ents.length > 0 ? ents[ents.length - 1]!.index : prevIndex);
    return true;
  }

  private maybeSendSnapshot(to: NodeId, pr: Progress): boolean {
    // Snapshots are expensive: only send one to a peer that seems alive.
    if (!pr.recentActive) return false;
    let snap: Snapshot;
    try {
      snap = this.raftLog.snapshot();
    } catch (err) {
      if (isRaftError(err, 'ERR_RAFT_SNAPSHOT_TEMPORARILY_UNAVAILABLE')) return false;
      throw err;
    }
    raftInvariant(!isEmptySnapshot(snap), 'entries are compacted but the storage has no snapshot');
    pr.becomeSnapshot(snap.metadata.index);
    this.send(makeMessage({ to, type: 'snap', snapshot: snap }));
    return true;
  }

  private sendHeartbeat(to: NodeId, ctx: Uint8Array | undefined): void {
    const pr = this.trk.progress.get(to)!;
    // Never tell a follower to commit past what it is known to hold: it may not have those entries.
    const commit = Math.min(pr.match, this.raftLog.committed);
    const m = makeMessage({ to, type: 'heartbeat', commit });
    if (ctx) m.context = ctx;
    this.send(m);
  }

  bcastAppend(): void {
    this.trk.visit((id) => {
      if (id !== this.id) this.sendAppend(id);
    });
  }

  private bcastHeartbeat(): void {
    this.bcastHeartbeatWithCtx(this.readOnly.lastPendingRequestCtx());
  }

  private bcastHeartbeatWithCtx(ctx: Uint8Array | undefined): void {
    this.trk.visit((id) => {
      if (id !== this.id) this.sendHeartbeat(id, ctx);
    });
  }

  // ---- state transitions -------------------------------------------------------------------

  private resetRandomizedElectionTimeout(): void {
    const r = Math.min(Math.max(this.random(), 0), 0.999999);
    this.randomizedElectionTimeout = this.electionTimeout + Math.floor(r * this.electionTimeout);
  }

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.leadTransferee = NONE;
    this.trk.resetVotes();
    const last = this.raftLog.lastIndex();
    for (const id of this.trk.ids()) {
      const old = this.trk.progress.get(id)!;
      const pr = new Progress(last + 1, this.trk.maxInflight, old.isLearner);
      if (id === this.id) pr.match = last;
      this.trk.progress.set(id, pr);
    }
    this.pendingConfIndex = 0;
    this.leavingAfterRemoval = false;
    this.readOnly = new ReadOnly();
    this.pendingReadIndexMessages = [];
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.state = 'follower';
  }

  becomeCandidate(): void {
    raftInvariant(this.state !== 'leader', 'invalid transition leader -> candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.state = 'candidate';
  }

  becomePreCandidate(): void {
    raftInvariant(this.state !== 'leader', 'invalid transition leader -> preCandidate');
    // A pre-candidate changes neither term nor vote: it only asks whether it could win.
    this.trk.resetVotes();
    this.lead = NONE;
    this.state = 'preCandidate';
  }

  becomeLeader(): void {
    raftInvariant(this.state !== 'follower', 'invalid transition follower -> leader');
    this.reset(this.term);
    this.lead = this.id;
    this.state = 'leader';
    const self = this.trk.progress.get(this.id);
    raftInvariant(self !== undefined, 'leader is not in its own configuration');
    self.becomeReplicate();
    self.recentActive = true;
    // Any conf change in the inherited log may be unapplied; hold new ones until it is applied.
    this.pendingConfIndex = this.raftLog.lastIndex();
    this.leavingAfterRemoval = this.hasUnappliedSelfRemoval();
    // An entry of the new term: once committed, every earlier entry is committed too (figure 8).
    this.appendEntry([{ term: 0, index: 0, type: 'normal', data: EMPTY }]);
  }

  private hup(kind: 'election' | 'transfer'): void {
    if (this.state === 'leader') return;
    if (!this.promotable()) return;
    if (this.hasUnappliedConfChanges()) return;
    if (this.preVote && kind === 'election') this.campaign('preElection');
    else this.campaign(kind);
  }

  private hasUnappliedSelfRemoval(): boolean {
    const lo = Math.max(this.raftLog.applied + 1, this.raftLog.firstIndex());
    const hi = this.raftLog.lastIndex() + 1;
    if (lo >= hi) return false;
    return this.raftLog.slice(lo, hi, Number.MAX_SAFE_INTEGER).some((e) => {
      if (e.type !== 'confChange') return false;
      try {
        const cc = decodeConfChange(e.data);
        return cc.type === 'removeNode' && cc.nodeId === this.id;
      } catch {
        return false;
      }
    });
  }

  /** A committed but unapplied conf change might remove us or change the quorum: wait for it. */
  private hasUnappliedConfChanges(): boolean {
    const lo = Math.max(this.raftLog.applied + 1, this.raftLog.firstIndex());
    const hi = this.raftLog.committed + 1;
    if (lo >= hi) return false;
    return this.raftLog.slice(lo, hi, Number.MAX_SAFE_INTEGER).some((e) => e.type === 'confChange');
  }

  private campaign(kind: CampaignKind): void {
    if (!this.promotable()) return;
    let voteMsg: MessageType;
    let term: number;
    if (kind === 'preElection') {
      this.becomePreCandidate();
      voteMsg = 'preVote';
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteMsg = 'vote';
      term = this.term;
    }
    if (this.poll(this.id, true) === 'won') {
      // A single voter wins on its own vote.
      if (kind === 'preElection') this.campaign('election');
      else {
        this.becomeLeader();
        this.bcastAppend();
      }
      return;
    }
    const lastIndex = this.raftLog.lastIndex();
    const lastTerm = this.raftLog.lastTerm();
    for (const id of this.trk.voterIds()) {
      if (id === this.id) continue;
      const m = makeMessage({ to: id, type: voteMsg, term, index: lastIndex, logTerm: lastTerm });
      if (kind === 'transfer') m.leaderTransfer = true;
      this.send(m);
    }
  }

  private poll(id: NodeId, granted: boolean): 'won' | 'lost' | 'pending' {
    this.trk.recordVote(id, granted);
    return this.trk.tallyVotes().result;
  }

  // ---- ticks -------------------------------------------------------------------------------

  tick(): void {
    if (this.state === 'leader') this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.step(makeMessage({ type: 'hup', from: this.id }));
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.step(makeMessage({ type: 'checkQuorum', from: this.id }));
      // A transfer that has not finished within an election timeout is abandoned.
      if (this.state === 'leader' && this.leadTransferee !== NONE) this.leadTransferee = NONE;
    }
    if (this.state !== 'leader') return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.step(makeMessage({ type: 'beat', from: this.id }));
    }
  }

  // ---- stepping ----------------------------------------------------------------------------

  /**
   * Feeds one message. Throws RaftError ERR_RAFT_PROPOSAL_DROPPED when a proposal or read request
   * cannot be accepted; everything else a peer can send is handled or ignored.
   */
  step(m: Message): void {
    if (m.term === 0) {
      // local message, or a forwarded proposal / read request
    } else if (m.term > this.term) {
      if (m.type === 'vote' || m.type === 'preVote') {
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeout;
        // We heard from a live leader recently: do not let a stray candidate depose it.
        if (!m.leaderTransfer && inLease) return;
      }
      if (m.type === 'preVote') {
        // Never bump the term for a pre-vote request.
      } else if (m.type === 'preVoteResp' && !m.reject) {
        // A granted pre-vote carries the future term; the term moves only if the election is won.
      } else if (m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap') {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === 'heartbeat' || m.type === 'app')) {
        // A stale leader that we ignore forever would never learn the newer term; with pre-vote or
        // check-quorum it may never see a vote request either. Tell it.
        this.send(makeMessage({ to: m.from, type: 'appResp' }));
      } else if (m.type === 'preVote') {
        this.send(makeMessage({ to: m.from, term: this.term, type: 'preVoteResp', reject: true }));
      }
      return;
    }

    switch (m.type) {
      case 'hup':
        this.hup('election');
        return;
      case 'vote':
      case 'preVote': {
        const canVote = this.vote === m.from ||
          (this.vote === NONE && this.lead === NONE) ||
          (m.type === 'preVote' && m.term > this.term);
        if (canVote && this.raftLog.isUpToDate(m.index, m.logTerm)) {
          this.send(makeMessage({ to: m.from, term: m.term, type: voteRespType(m.type) }));
          if (m.type === 'vote') {
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          this.send(makeMessage({ to: m.from, term: this.term, type: voteRespType(m.type), reject: true }));
        }
        return;
      }
    }
    switch (this.state) {
      case 'leader':
        this.stepLeader(m);
        return;
      case 'candidate':
      case 'preCandidate':
        this.stepCandidate(m);
        return;
      case 'follower':
        this.stepFollower(m);
        return;
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case 'beat':
        this.bcastHeartbeat();
        return;
      case 'checkQuorum':
        if (!this.trk.quorumActive(this.id)) this.becomeFollower(this.term, NONE);
        this.trk.visit((id, pr) => {
          if (id !== this.id) pr.recentActive = false;
        });
        return;
      case 'prop':
        this.handleProposal(m);
        return;
      case 'readIndex':
        if (this.trk.isSingleton()) {
          this.respondToReadIndex(m, this.raftLog.committed);
          return;
        }
        // Until an entry of this term commits, our commit index may lag what earlier leaders
        // committed; answering with it could serve stale reads.
        if (!this.committedEntryInCurrentTerm()) {
          this.pendingReadIndexMessages.push(m);
          return;
        }
        this.handleReadIndex(m);
        return;
    }

    const pr = this.trk.progress.get(m.from);
    if (!pr) return;
    switch (m.type) {
      case 'appResp':
        this.handleAppendResponse(m, pr);
        return;
      case 'heartbeatResp': {
        pr.recentActive = true;
        pr.msgAppFlowPaused = false;
        if (pr.match < this.raftLog.lastIndex() || pr.state === 'probe') this.sendAppend(m.from);
        if (this.readOnlyOption !== 'safe' || !m.context) return;
        const acks = this.readOnly.recvAck(m.from, m.context);
        if (!acks) return;
        const votes = new Map<NodeId, boolean>();
        for (const id of acks) votes.set(id, true);
        if (majorityVoteResult(this.trk.voterIds(), votes) !== 'won') return;
        for (const rs of this.readOnly.advance(m.context)) this.respondToReadIndex(rs.req, rs.index);
        return;
      }
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
      case 'transferLeader': {
        // Leadership is never handed to a learner: it cannot win a vote and must not try.
        if (pr.isLearner) return;
        const transferee = m.from;
        if (this.leadTransferee !== NONE) {
          if (this.leadTransferee === transferee) return;
          this.leadTransferee = NONE;
        }
        if (transferee === this.id) return;
        this.electionElapsed = 0;
        this.leadTransferee = transferee;
        if (pr.match === this.raftLog.lastIndex()) this.sendTimeoutNow(transferee);
        else this.sendAppend(transferee);
        return;
      }
    }
  }

  private handleProposal(m: Message): void {
    if (m.entries.length === 0) throw new RaftError('ERR_RAFT_INVALID_MESSAGE', 'proposal without entries');
    if (!this.trk.progress.has(this.id)) throw dropped('this leader was removed from the configuration');
    if (this.leadTransferee !== NONE) throw dropped(`leadership is being transferred to ${this.leadTransferee}`);
    if (this.leavingAfterRemoval) throw dropped('this leader is being removed from the configuration');
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
      if (this.pendingConfIndex > this.raftLog.applied) {
        throw dropped(`a configuration change at index ${this.pendingConfIndex} is not applied yet`);
      }
      const err = checkConfChange(this.trk, cc);
      if (err) throw err;
      ccAt = i;
      removesSelf = cc.type === 'removeNode' && cc.nodeId === this.id;
    }
    const first = this.raftLog.lastIndex() + 1;
    this.appendEntry(m.entries.map((e) => ({ term: 0, index: 0, type: e.type, data: e.data })));
    if (ccAt >= 0) this.pendingConfIndex = first + ccAt;
    if (removesSelf) this.leavingAfterRemoval = true;
    this.bcastAppend();
  }

  private handleReadIndex(m: Message): void {
    if (this.readOnlyOption === 'safe') {
      this.readOnly.addRequest(this.raftLog.committed, m);
      // The leader acknowledges itself; the read is confirmed once a quorum echoes the context.
      const acks = this.readOnly.recvAck(this.id, m.context);
      if (acks && majorityVoteResult(this.trk.voterIds(), new Map([...acks].map((id) => [id, true]))) === 'won') {
        for (const rs of this.readOnly.advance(m.context)) this.respondToReadIndex(rs.req, rs.index);
        return;
      }
      this.bcastHeartbeatWithCtx(m.context);
      return;
    }
    this.respondToReadIndex(m, this.raftLog.committed);
  }

  private respondToReadIndex(req: Message, index: number): void {
    if (req.from === NONE || req.from === this.id) {
      this.readStates.push({ index, requestCtx: req.context ?? EMPTY });
      return;
    }
    const resp = makeMessage({ to: req.from, type: 'readIndexResp', index });
    if (req.context) resp.context = req.context;
    this.send(resp);
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.raftLog.termOrZero(this.raftLog.committed) === this.term;
  }

  private releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0 || !this.committedEntryInCurrentTerm()) return;
    const msgs = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of msgs) this.handleReadIndex(m);
  }

  private handleAppendResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    if (m.reject) {
      let nextProbeIdx = m.rejectHint;
      if (m.logTerm > 0) {
        // Skip every entry of ours whose term is above the follower's term at the hint: none of
        // them can match, so one round trip per term replaces one per entry.
        nextProbeIdx = this.raftLog.findConflictByTerm(m.rejectHint, m.logTerm).index;
      }
      if (pr.maybeDecrTo(m.index, nextProbeIdx)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    const oldPaused = pr.isPaused();
    if (!(pr.maybeUpdate(m.index) || (pr.match === m.index && pr.state === 'probe'))) return;
    if (pr.state === 'probe') {
      pr.becomeReplicate();
    } else if (pr.state === 'snapshot' && pr.match + 1 >= this.raftLog.firstIndex()) {
      // Caught up far enough (by the snapshot or otherwise) to continue from the log.
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === 'replicate') {
      pr.inflights.freeLE(m.index);
    }
    if (this.maybeCommit()) {
      this.releasePendingReadIndexMessages();
      this.bcastAppend();
    } else if (oldPaused) {
      this.sendAppend(m.from);
    }
    while (this.maybeSendAppend(m.from, false)) {
      // keep streaming while the window allows
    }
    if (m.from === this.leadTransferee && pr.match === this.raftLog.lastIndex()) this.sendTimeoutNow(m.from);
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send(makeMessage({ to, type: 'timeoutNow' }));
  }

  private stepCandidate(m: Message): void {
    const myVoteResp: MessageType = this.state === 'preCandidate' ? 'preVoteResp' : 'voteResp';
    switch (m.type) {
      case 'prop':
        throw dropped('no leader (election in progress)');
      case 'readIndex':
        throw dropped('no leader (election in progress)');
      case 'app':
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return;
      case 'heartbeat':
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case 'snap':
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case 'timeoutNow':
        return;
    }
    if (m.type !== myVoteResp) return;
    const res = this.poll(m.from, !m.reject);
    if (res === 'won') {
      if (this.state === 'preCandidate') {
        this.campaign('election');
      } else {
        this.becomeLeader();
        this.bcastAppend();
      }
    } else if (res === 'lost') {
      // A pre-candidate gives up at its current term; a candidate keeps the term it started.
      this.becomeFollower(this.term, NONE);
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'prop':
        if (this.lead === NONE) throw dropped('no leader');
        this.send({ ...m, to: this.lead, term: 0 });
        return;
      case 'app':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return;
      case 'heartbeat':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case 'snap':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case 'transferLeader':
        if (this.lead === NONE) return;
        this.send({ ...m, to: this.lead, term: 0 });
        return;
      case 'timeoutNow':
        // The leader wants us to take over now, without waiting for a timeout or a pre-vote.
        this.hup('transfer');
        return;
      case 'readIndex':
        if (this.lead === NONE) throw dropped('no leader to serve a read index');
        this.send({ ...m, to: this.lead, term: 0 });
        return;
      case 'readIndexResp':
        this.readStates.push({ index: m.index, requestCtx: m.context ?? EMPTY });
        return;
    }
  }

  private handleAppendEntries(m: Message): void {
    if (m.index < this.raftLog.committed) {
      this.send(makeMessage({ to: m.from, type: 'appResp', index: this.raftLog.committed }));
      return;
    }
    const lastNew = this.raftLog.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.send(makeMessage({ to: m.from, type: 'appResp', index: lastNew }));
      return;
    }
    const hint = this.raftLog.findConflictByTerm(Math.min(m.index, this.raftLog.lastIndex()), m.logTerm);
    this.send(makeMessage({
      to: m.from, type: 'appResp', index: m.index, reject: true, rejectHint: hint.index, logTerm: hint.term,
    }));
  }

  private handleHeartbeat(m: Message): void {
    this.raftLog.commitTo(m.commit);
    const resp = makeMessage({ to: m.from, type: 'heartbeatResp' });
    if (m.context) resp.context = m.context;
    this.send(resp);
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot!;
    if (this.restore(s)) {
      this.send(makeMessage({ to: m.from, type: 'appResp', index: this.raftLog.lastIndex() }));
    } else {
      this.send(makeMessage({ to: m.from, type: 'appResp', index: this.raftLog.committed }));
    }
  }

  /** Installs a snapshot from the leader. Returns false when it brings nothing new. */
  private restore(s: Snapshot): boolean {
    const md = s.metadata;
    if (md.index <= this.raftLog.committed) return false;
    if (this.state !== 'follower') {
      // Only a leader of our term sends snapshots, and then we are its follower; be defensive.
      this.becomeFollower(this.term + 1, NONE);
      return false;
    }
    // A snapshot that does not list us predates our addition; wait for a newer one.
    if (!md.confState.voters.includes(this.id) && !md.confState.learners.includes(this.id)) return false;
    if (this.raftLog.matchTerm(md.index, md.term)) {
      // We already hold that entry: just fast-forward the commit index.
      this.raftLog.commitTo(md.index);
      return false;
    }
    this.raftLog.restore(s);
    this.resetTracker(md.confState);
    return true;
  }

  private appendEntry(es: Entry[]): void {
    const li = this.raftLog.lastIndex();
    const ents = es.map((e, i) => ({ ...e, term: this.term, index: li + 1 + i }));
    this.raftLog.append(ents);
    this.trk.progress.get(this.id)!.maybeUpdate(this.raftLog.lastIndex());
    this.maybeCommit();
  }

  private maybeCommit(): boolean {
    return this.raftLog.maybeCommit(this.trk.committed(), this.term);
  }

  // ---- membership --------------------------------------------------------------------------

  /** Applies a committed conf change; returns the resulting membership. */
  applyConfChange(cc: ConfChange): ConfState {
    const changed = applyToTracker(this.trk, cc, this.raftLog.lastIndex());
    const self = this.trk.progress.get(this.id);
    this.isLearner = self?.isLearner ?? false;
    if (this.state === 'leader') {
      if (!self || self.isLearner) {
        // Removed (or somehow demoted): stop leading so the remaining voters elect someone.
        this.becomeFollower(this.term, NONE);
      } else if (changed) {
        // The quorum may have shrunk, committing entries; new members need their first probe.
        if (this.maybeCommit()) {
          this.releasePendingReadIndexMessages();
          this.bcastAppend();
        } else {
          this.trk.visit((id) => {
            if (id !== this.id) this.maybeSendAppend(id, false);
          });
        }
        if (this.leadTransferee !== NONE && !this.trk.voters.has(this.leadTransferee)) this.leadTransferee = NONE;
      }
    }
    return this.trk.confState();
  }
}
