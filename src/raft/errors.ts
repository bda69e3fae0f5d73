import { BoltkvError } from '../errors.ts';

/**
 * Typed errors of the raft core. Callers branch on `err.code`; the message text is for humans only.
 * `RaftPanic` means one of the core's own invariants broke (a bug here, or a storage that lied).
 */
export type RaftErrorCode =
  /** The requested index is below the storage's first index (it was compacted into a snapshot). */
  | 'ERR_RAFT_COMPACTED'
  /** The requested index is above the storage's last index. */
  | 'ERR_RAFT_UNAVAILABLE'
  /** A snapshot older than the one already held was offered to the storage. */
  | 'ERR_RAFT_SNAP_OUT_OF_DATE'
  /** The storage cannot produce a snapshot right now; the leader retries later. */
  | 'ERR_RAFT_SNAPSHOT_TEMPORARILY_UNAVAILABLE'
  /** A proposal was not appended (no leader, leader transfer in progress, conf change pending...). */
  | 'ERR_RAFT_PROPOSAL_DROPPED'
  /** A local-only message type (hup, beat, ...) was passed to step() as if it came from the network. */
  | 'ERR_RAFT_STEP_LOCAL_MSG'
  /** A response came from a node that is not in this leader's configuration. */
  | 'ERR_RAFT_STEP_PEER_NOT_FOUND'
  /** The RawNode options are invalid. */
  | 'ERR_RAFT_INVALID_CONFIG'
  /** A configuration change is malformed or not allowed (e.g. removing the last voter). */
  | 'ERR_RAFT_INVALID_CONF_CHANGE'
  /** Several changes in one proposal: joint consensus is not implemented. */
  | 'ERR_RAFT_JOINT_UNSUPPORTED'
  /** A message object does not have the shape of a raft message. */
  | 'ERR_RAFT_INVALID_MESSAGE'
  /** Bytes could not be decoded into a message or conf change. */
  | 'ERR_RAFT_DECODE'
  /** advance() was called with a Ready that is not the last one handed out. */
  | 'ERR_RAFT_READY_MISMATCH'
  | 'ERR_RAFT_PANIC';

export class RaftError extends BoltkvError {
  declare readonly code: RaftErrorCode;
  constructor(code: RaftErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'RaftError';
  }
}

/** Thrown only when an invariant of the raft core itself is broken. */
export class RaftPanic extends RaftError {
  constructor(message: string) {
    super('ERR_RAFT_PANIC', `raft invariant broken: ${message}`);
    this.name = 'RaftPanic';
  }
}

/** A proposal or read request the node cannot take now; the caller may retry elsewhere or later. */
export function proposalDropped(why: string): RaftError {
  return new RaftError('ERR_RAFT_PROPOSAL_DROPPED', `proposal dropped: ${why}`);
}

export function raftInvariant(cond: unknown, message: string): asserts cond {
  if (!cond) throw new RaftPanic(message);
}

export function isRaftError(err: unknown, code?: RaftErrorCode): err is RaftError {
  return err instanceof RaftError && (code === undefined || err.code === code);
}
