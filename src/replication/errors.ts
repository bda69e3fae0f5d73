import { BoltkvError } from '../errors.ts';

/**
 * Errors of the replication layer. The messages a client sees for the etcd-shaped cases are etcd's
 * own texts (etcdserver/api/v3rpc/rpctypes), so a gateway can pass them through unchanged.
 */
export type ReplicationErrorCode =
  /** The member is stopped, or its store failed and it must be restarted. */
  | 'ERR_CLOSED'
  /** A proposal or read did not complete in time (etcd: "etcdserver: request timed out"). */
  | 'ERR_TIMEOUT'
  /** No leader is known right now (etcd: "etcdserver: no leader"). */
  | 'ERR_NO_LEADER'
  /** The request is not allowed on a learner (etcd: "etcdserver: rpc not supported for learner"). */
  | 'ERR_LEARNER_NOT_SUPPORTED'
  /** Promotion refused: the learner's log lags the leader's (etcd's text). */
  | 'ERR_LEARNER_NOT_READY'
  /** The member to promote is not a learner (etcd: "etcdserver: can only promote a learner member"). */
  | 'ERR_MEMBER_NOT_LEARNER'
  /** etcd: "etcdserver: member not found". */
  | 'ERR_MEMBER_NOT_FOUND'
  /** etcd: "etcdserver: ID exists" / "etcdserver: Peer URLs already exists". */
  | 'ERR_MEMBER_EXISTS'
  /** Only the leader can answer this (promotion check, transfer). */
  | 'ERR_NOT_LEADER'
  /** A request with a shape the replicated state machine does not know. */
  | 'ERR_INVALID_ARGUMENT'
  /** The bytes of the raft buckets do not decode: the file is damaged. */
  | 'ERR_CORRUPT';

export class ReplicationError extends BoltkvError {
  declare readonly code: ReplicationErrorCode;
  constructor(code: ReplicationErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'ReplicationError';
  }
}

/** etcd's client-facing texts for the codes that have one. */
export const ETCD_MESSAGES: Partial<Record<ReplicationErrorCode, string>> = {
  ERR_TIMEOUT: 'etcdserver: request timed out',
  ERR_NO_LEADER: 'etcdserver: no leader',
  ERR_LEARNER_NOT_SUPPORTED: 'etcdserver: rpc not supported for learner',
  ERR_LEARNER_NOT_READY: 'etcdserver: can only promote a learner member which is in sync with leader',
  ERR_MEMBER_NOT_LEARNER: 'etcdserver: can only promote a learner member',
  ERR_MEMBER_NOT_FOUND: 'etcdserver: member not found',
  ERR_MEMBER_EXISTS: 'etcdserver: ID exists',
  ERR_NOT_LEADER: 'etcdserver: not leader',
};

export function replicationError(code: ReplicationErrorCode, detail?: string): ReplicationError {
  const base = ETCD_MESSAGES[code] ?? code;
  return new ReplicationError(code, detail === undefined ? base : `${base} (${detail})`);
}
