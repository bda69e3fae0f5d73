import { applyToTracker } from './confchange.ts';
import { decodeConfChange } from './codec.ts';
import { RaftError, isRaftError, raftInvariant } from './errors.ts';
import { RaftLog } from './log.ts';
import { Progress } from './progress.ts';
import { releasePendingReadIndexMessages } from './read-index.ts';
import { ReadOnly } from './readonly.ts';
import { stepCandidate } from './step-candidate.ts';
import { stepFollower } from './step-follower.ts';
import { stepLeader } from './step-leader.ts';
import { ProgressTracker } from './tracker.ts';
import { invalidConfig, type RaftOptions, validateOptions } from './config.ts';
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  MessageType,
  NodeId,
  ReadOnlyOption,
  ReadState,
  Snapshot,
  SoftState,
  StateType,
} from './types.ts';
import { NONE, isEmptyHardState, isEmptySnapshot, makeMessage } from './types.ts';

export type { RaftOptions } from './config.ts';

type CampaignKind = 'preElection' | 'election' | 'transfer';

function voteRespType(t: MessageType): MessageType {
  return t === 'vote' ? 'voteResp' : 'preVoteResp';
}

const EMPTY = new Uint8Array(0);

/**
 * The raft state machine. It performs no I/O: inputs are ticks and messages, outputs are queued in
 * `msgs`, `readStates` and the log's unstable part, which RawNode packages into a Ready.
 *
 * This file is raft.go's core: state, sending, role transitions, elections, ticks, and the part of
 * `step` common to every role (terms and votes). What each role does with the rest is in
 * step-leader.ts, step-candidate.ts and step-follower.ts; the leader's ReadIndex handling is in
 * read-index.ts. Members those files use are public here, but Raft itself is internal: the
 * package exposes only RawNode.
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
    const c = validateOptions(opts);
    this.id = c.id;
    this.heartbeatTimeout = c.heartbeatTick;
    this.electionTimeout = c.electionTick;
    this.maxMsgSize = c.maxSizePerMsg;
    this.checkQuorum = c.checkQuorum;
    this.preVote = c.preVote;
    this.readOnlyOption = c.readOnlyOption;
    this.random = c.random;

    this.raftLog = new RaftLog(c.storage, c.maxCommittedSizePerReady);
    const { hardState, confState } = c.storage.initialState();
    this.trk = new ProgressTracker(c.maxInflightMsgs);
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
      throw new RaftError(
        'ERR_RAFT_PANIC',
        `stored commit ${hs.commit} is outside [${this.raftLog.committed}, ${this.raftLog.lastIndex()}]`,
      );
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

  send(m: Message): void {
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
  maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
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
    this.send(
      makeMessage({
        to,
        type: 'app',
        index: prevIndex,
        logTerm: prevTerm,
        entries: ents,
        commit: this.raftLog.committed,
      }),
    );
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

  bcastHeartbeat(): void {
    this.bcastHeartbeatWithCtx(this.readOnly.lastPendingRequestCtx());
  }

  bcastHeartbeatWithCtx(ctx: Uint8Array | undefined): void {
    this.trk.visit((id) => {
      if (id !== this.id) this.sendHeartbeat(id, ctx);
    });
  }

  sendTimeoutNow(to: NodeId): void {
    this.send(makeMessage({ to, type: 'timeoutNow' }));
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

  hup(kind: 'election' | 'transfer'): void {
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

  campaign(kind: CampaignKind): void {
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

  poll(id: NodeId, granted: boolean): 'won' | 'lost' | 'pending' {
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
   * cannot be accepted; everything else a peer can send is handled or ignored. Terms and votes are
   * settled here, the rest by the step function of the current role.
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
        const canVote =
          this.vote === m.from ||
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
        stepLeader(this, m);
        return;
      case 'candidate':
      case 'preCandidate':
        stepCandidate(this, m);
        return;
      case 'follower':
        stepFollower(this, m);
        return;
    }
  }

  /** Installs a snapshot from the leader. Returns false when it brings nothing new. */
  restore(s: Snapshot): boolean {
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

  appendEntry(es: Entry[]): void {
    const li = this.raftLog.lastIndex();
    const ents = es.map((e, i) => ({ ...e, term: this.term, index: li + 1 + i }));
    this.raftLog.append(ents);
    this.trk.progress.get(this.id)!.maybeUpdate(this.raftLog.lastIndex());
    this.maybeCommit();
  }

  maybeCommit(): boolean {
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
          releasePendingReadIndexMessages(this);
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
