/**
 * Plain data shapes exchanged between the raft core, its storage and its transport. Everything is a
 * plain object so messages can be encoded (see codec.ts) and logs stored without class instances.
 * Node ids are positive integers; 0 means "nobody". Indexes and terms are non-negative integers
 * (JS numbers are exact up to 2^53, far beyond any realistic log).
 */

export type NodeId = number;

/** The "nobody" node id (no vote cast, no known leader). */
export const NONE: NodeId = 0;

export type EntryType = 'normal' | 'confChange';

export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  /** Opaque payload. For 'confChange' entries it is an encoded ConfChange (codec.ts). */
  data: Uint8Array;
}

/** What must be durable before any message of the same Ready is sent. */
export interface HardState {
  term: number;
  vote: NodeId;
  commit: number;
}

/** A membership: who votes and who only learns. The two lists never overlap. */
export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

export interface SnapshotMetadata {
  index: number;
  term: number;
  confState: ConfState;
}

export interface Snapshot {
  data: Uint8Array;
  metadata: SnapshotMetadata;
}

export type ConfChangeType = 'addNode' | 'removeNode' | 'addLearnerNode';

/**
 * One membership change. 'addNode' on an existing learner promotes it. Only one change per proposal:
 * joint consensus is not implemented (see docs/raft.md).
 */
export interface ConfChange {
  type: ConfChangeType;
  nodeId: NodeId;
  context?: Uint8Array;
}

export type StateType = 'follower' | 'candidate' | 'leader' | 'preCandidate';

export type MessageType =
  // local only: produced by the node itself, never accepted from the network
  | 'hup'
  | 'beat'
  | 'unreachable'
  | 'snapStatus'
  | 'checkQuorum'
  // may travel the network
  | 'prop'
  | 'app'
  | 'appResp'
  | 'vote'
  | 'voteResp'
  | 'preVote'
  | 'preVoteResp'
  | 'snap'
  | 'heartbeat'
  | 'heartbeatResp'
  | 'transferLeader'
  | 'timeoutNow'
  | 'readIndex'
  | 'readIndexResp';

export const MESSAGE_TYPES: readonly MessageType[] = [
  'hup',
  'beat',
  'unreachable',
  'snapStatus',
  'checkQuorum',
  'prop',
  'app',
  'appResp',
  'vote',
  'voteResp',
  'preVote',
  'preVoteResp',
  'snap',
  'heartbeat',
  'heartbeatResp',
  'transferLeader',
  'timeoutNow',
  'readIndex',
  'readIndexResp',
];

export const LOCAL_MESSAGE_TYPES: ReadonlySet<MessageType> = new Set<MessageType>([
  'hup',
  'beat',
  'unreachable',
  'snapStatus',
  'checkQuorum',
]);

export const RESPONSE_MESSAGE_TYPES: ReadonlySet<MessageType> = new Set<MessageType>([
  'appResp',
  'voteResp',
  'preVoteResp',
  'heartbeatResp',
  'unreachable',
  'snapStatus',
]);

/**
 * A raft message. Unused fields are zero/empty. `term` 0 marks a local message or a forwarded
 * proposal/readIndex (those carry no term, as the sender's term says nothing about them).
 */
export interface Message {
  type: MessageType;
  to: NodeId;
  from: NodeId;
  term: number;
  /** Term of the entry at `index` (append), or of the sender's last entry (vote requests). */
  logTerm: number;
  index: number;
  entries: Entry[];
  commit: number;
  reject: boolean;
  /** On a rejected append: the follower's guess of where the logs may match. */
  rejectHint: number;
  snapshot?: Snapshot;
  /** Opaque request context: ReadIndex ids, echoed by heartbeats and their responses. */
  context?: Uint8Array;
  /** On vote requests: this election was ordered by the leader (transfer), so leases do not apply. */
  leaderTransfer?: boolean;
}

/** The result of a ReadIndex request: reads are safe once the state machine applied `index`. */
export interface ReadState {
  index: number;
  requestCtx: Uint8Array;
}

export interface SoftState {
  lead: NodeId;
  raftState: StateType;
}

export type ReadOnlyOption = 'safe' | 'leaseBased';

export type SnapshotStatus = 'finish' | 'failure';

export function emptyHardState(): HardState {
  return { term: 0, vote: NONE, commit: 0 };
}

export function isEmptyHardState(hs: HardState): boolean {
  return hs.term === 0 && hs.vote === NONE && hs.commit === 0;
}

export function isEmptySnapshot(s: Snapshot | undefined): boolean {
  return s === undefined || s.metadata.index === 0;
}

/** Fills the zero fields so call sites only name what matters. */
export function makeMessage(m: Partial<Message> & Pick<Message, 'type'>): Message {
  return {
    to: NONE,
    from: NONE,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    ...m,
  };
}

/** Approximate encoded size of an entry, used for maxSizePerMsg budgeting. */
export function entrySize(e: Entry): number {
  return e.data.length + 24;
}

/**
 * Keeps the longest prefix of `ents` within `maxSize` bytes, but always at least one entry so a
 * single huge entry can still make progress.
 */
export function limitSize(ents: Entry[], maxSize: number): Entry[] {
  if (ents.length === 0) return ents;
  let size = entrySize(ents[0]!);
  let n = 1;
  while (n < ents.length) {
    size += entrySize(ents[n]!);
    if (size > maxSize) break;
    n++;
  }
  return n === ents.length ? ents : ents.slice(0, n);
}
