import { encodeConfChange } from './codec.ts';
import { RaftError, isRaftError } from './errors.ts';
import { Raft, type RaftOptions } from './raft.ts';
import { getStatus, type Status } from './status.ts';
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  NodeId,
  ReadState,
  Snapshot,
  SnapshotStatus,
  SoftState,
} from './types.ts';
import { LOCAL_MESSAGE_TYPES, NONE, RESPONSE_MESSAGE_TYPES, isEmptyHardState, makeMessage } from './types.ts';
import { validateConfChange, validateMessage } from './validate.ts';

export type RawNodeOptions = RaftOptions;

/**
 * Everything the application must act on, produced by RawNode.ready(). Handle in this order:
 * 1. persist `snapshot` (if any), then `entries` and `hardState` (fsync when `mustSync`);
 * 2. send `messages`;
 * 3. apply `snapshot` then `committedEntries` to the state machine (calling applyConfChange for
 *    conf change entries), and serve `readStates` once applied >= their index;
 * 4. call advance(rd).
 */
export interface Ready {
  /** Present when leader or role changed. */
  softState?: SoftState;
  /** Present when term, vote or commit changed. */
  hardState?: HardState;
  readStates: ReadState[];
  /** New log entries to persist (they may overwrite a conflicting suffix of the stored log). */
  entries: Entry[];
  /** A snapshot from the leader to persist and apply. */
  snapshot?: Snapshot;
  /** Committed entries to apply, in order. */
  committedEntries: Entry[];
  /** Messages to send after the persistence of step 1 is durable. */
  messages: Message[];
  /** Whether step 1 must be synced to disk (term, vote or entries changed). */
  mustSync: boolean;
}

function sameSoft(a: SoftState, b: SoftState): boolean {
  return a.lead === b.lead && a.raftState === b.raftState;
}

function sameHard(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

/**
 * The thread-safe-by-construction (single-threaded) driver of a raft node: call tick() on a timer,
 * step() for each received message, and loop hasReady()/ready()/advance(). It never performs I/O.
 */
export class RawNode {
  private readonly raft: Raft;
  private prevSoft: SoftState;
  private prevHard: HardState;
  private outstanding: Ready | undefined;

  constructor(opts: RawNodeOptions) {
    this.raft = new Raft(opts);
    this.prevSoft = this.raft.softState();
    this.prevHard = this.raft.hardState();
  }

  /** Advances logical time by one tick (elections, heartbeats, check-quorum). */
  tick(): void {
    this.raft.tick();
  }

  /** Starts an election now (a learner or removed node ignores this). */
  campaign(): void {
    this.raft.step(makeMessage({ type: 'hup' }));
  }

  /**
   * Proposes data to be appended. A follower forwards it to the leader (delivery not guaranteed).
   * Throws ERR_RAFT_PROPOSAL_DROPPED when there is no leader or a transfer is in progress.
   */
  propose(data: Uint8Array): void {
    if (!(data instanceof Uint8Array))
      throw new RaftError('ERR_RAFT_INVALID_MESSAGE', 'proposal data must be a Uint8Array');
    this.raft.step(
      makeMessage({ type: 'prop', from: this.raft.id, entries: [{ term: 0, index: 0, type: 'normal', data }] }),
    );
  }

  /**
   * Proposes one membership change. An array is accepted only with exactly one element: several
   * changes at once need joint consensus, which is not implemented (ERR_RAFT_JOINT_UNSUPPORTED).
   */
  proposeConfChange(cc: ConfChange | readonly ConfChange[]): void {
    let single: unknown = cc;
    if (Array.isArray(cc)) {
      if (cc.length === 0) throw new RaftError('ERR_RAFT_INVALID_CONF_CHANGE', 'empty conf change list');
      if (cc.length > 1) {
        throw new RaftError('ERR_RAFT_JOINT_UNSUPPORTED', 'only one membership change at a time is supported');
      }
      single = cc[0];
    }
    const data = encodeConfChange(validateConfChange(single));
    this.raft.step(
      makeMessage({
        type: 'prop',
        from: this.raft.id,
        entries: [{ term: 0, index: 0, type: 'confChange', data }],
      }),
    );
  }

  /**
   * Feeds a message received from a peer. Throws ERR_RAFT_INVALID_MESSAGE for a malformed message,
   * ERR_RAFT_STEP_LOCAL_MSG for local-only types, ERR_RAFT_STEP_PEER_NOT_FOUND for a response from a
   * non-member (the caller may ignore that one). Forwarded proposals the leader cannot take are
   * dropped silently: their proposer learns by timeout, as with any lost message.
   */
  step(msg: Message): void {
    const m = validateMessage(msg);
    if (LOCAL_MESSAGE_TYPES.has(m.type)) {
      throw new RaftError('ERR_RAFT_STEP_LOCAL_MSG', `message type ${m.type} is local and cannot be stepped`);
    }
    if (RESPONSE_MESSAGE_TYPES.has(m.type) && m.from !== NONE && !this.raft.trk.progress.has(m.from)) {
      throw new RaftError('ERR_RAFT_STEP_PEER_NOT_FOUND', `response from unknown peer ${m.from}`);
    }
    try {
      this.raft.step(m);
    } catch (err) {
      if (
        (m.type === 'prop' || m.type === 'readIndex') &&
        isRaftError(err) &&
        (err.code === 'ERR_RAFT_PROPOSAL_DROPPED' ||
          err.code === 'ERR_RAFT_INVALID_CONF_CHANGE' ||
          err.code === 'ERR_RAFT_JOINT_UNSUPPORTED' ||
          err.code === 'ERR_RAFT_INVALID_MESSAGE')
      ) {
        return;
      }
      throw err;
    }
  }

  /** Applies a committed conf change (call it while applying the entry); returns the new membership. */
  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(validateConfChange(cc));
  }

  /**
   * Requests a linearizable read. `ctx` identifies the request (make it unique); a ReadState with
   * the same ctx appears in a later Ready. Throws ERR_RAFT_PROPOSAL_DROPPED when no leader is known.
   */
  readIndex(ctx: Uint8Array): void {
    if (!(ctx instanceof Uint8Array))
      throw new RaftError('ERR_RAFT_INVALID_MESSAGE', 'read context must be a Uint8Array');
    this.raft.step(makeMessage({ type: 'readIndex', context: ctx }));
  }

  /** Asks the leader to hand leadership to `transferee`; ignored for learners and non-members. */
  transferLeader(transferee: NodeId): void {
    if (!Number.isSafeInteger(transferee) || transferee <= 0) {
      throw new RaftError('ERR_RAFT_INVALID_MESSAGE', 'transferee must be a positive node id');
    }
    this.raft.step(makeMessage({ type: 'transferLeader', from: transferee }));
  }

  /** Tells the leader a message to `id` probably got lost, so it stops streaming optimistically. */
  reportUnreachable(id: NodeId): void {
    this.raft.step(makeMessage({ type: 'unreachable', from: id }));
  }

  /** Reports whether the snapshot sent to `id` was delivered ('finish') or lost ('failure'). */
  reportSnapshot(id: NodeId, status: SnapshotStatus): void {
    if (status !== 'finish' && status !== 'failure') {
      throw new RaftError('ERR_RAFT_INVALID_MESSAGE', `snapshot status must be 'finish' or 'failure'`);
    }
    this.raft.step(makeMessage({ type: 'snapStatus', from: id, reject: status === 'failure' }));
  }

  status(): Status {
    return getStatus(this.raft);
  }

  hasReady(): boolean {
    const r = this.raft;
    if (!sameSoft(r.softState(), this.prevSoft)) return true;
    const hs = r.hardState();
    if (!isEmptyHardState(hs) && !sameHard(hs, this.prevHard)) return true;
    if (r.raftLog.unstable.snapshot) return true;
    if (r.msgs.length > 0 || r.raftLog.unstableEntries().length > 0 || r.readStates.length > 0) return true;
    return r.raftLog.hasNextCommittedEnts();
  }

  /**
   * Collects pending work. Must be followed by advance(rd) before the next ready();
   * throws ERR_RAFT_READY_MISMATCH otherwise.
   */
  ready(): Ready {
    if (this.outstanding) throw new RaftError('ERR_RAFT_READY_MISMATCH', 'ready() called twice without advance()');
    const r = this.raft;
    const soft = r.softState();
    const hard = r.hardState();
    const rd: Ready = {
      readStates: r.readStates,
      entries: [...r.raftLog.unstableEntries()],
      committedEntries: r.raftLog.nextCommittedEnts(),
      messages: r.msgs,
      mustSync: false,
    };
    if (!sameSoft(soft, this.prevSoft)) {
      rd.softState = soft;
      this.prevSoft = soft;
    }
    if (!isEmptyHardState(hard) && !sameHard(hard, this.prevHard)) rd.hardState = hard;
    if (r.raftLog.unstable.snapshot) rd.snapshot = r.raftLog.unstable.snapshot;
    rd.mustSync =
      rd.entries.length > 0 ||
      (rd.hardState !== undefined &&
        (rd.hardState.term !== this.prevHard.term || rd.hardState.vote !== this.prevHard.vote));
    r.msgs = [];
    r.readStates = [];
    this.outstanding = rd;
    return rd;
  }

  /** Acknowledges that everything in `rd` was persisted, sent and applied. */
  advance(rd: Ready): void {
    if (rd !== this.outstanding)
      throw new RaftError('ERR_RAFT_READY_MISMATCH', 'advance() needs the Ready returned by the last ready()');
    this.outstanding = undefined;
    const log = this.raft.raftLog;
    if (rd.hardState) this.prevHard = rd.hardState;
    let applied = 0;
    if (rd.snapshot) applied = rd.snapshot.metadata.index;
    const lastCommitted = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastCommitted) applied = Math.max(applied, lastCommitted.index);
    if (applied > log.applied) log.appliedTo(applied);
    const lastEntry = rd.entries[rd.entries.length - 1];
    if (lastEntry) log.stableTo(lastEntry.index, lastEntry.term);
    if (rd.snapshot) log.stableSnapTo(rd.snapshot.metadata.index);
  }
}
