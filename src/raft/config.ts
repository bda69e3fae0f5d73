import type { Storage } from './storage.ts';
import { RaftError } from './errors.ts';
import type { NodeId, ReadOnlyOption } from './types.ts';

/**
 * A raft node's options and their checks (raft.go's Config and its validate): every bad option is
 * refused with ERR_RAFT_INVALID_CONFIG before any state exists, and the defaults are filled in here.
 */

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

/** The options checked, with every default filled in. */
export interface RaftConfig {
  id: NodeId;
  storage: Storage;
  electionTick: number;
  heartbeatTick: number;
  maxSizePerMsg: number;
  maxCommittedSizePerReady: number;
  maxInflightMsgs: number;
  checkQuorum: boolean;
  preVote: boolean;
  readOnlyOption: ReadOnlyOption;
  random: () => number;
}

export function invalidConfig(msg: string): never {
  throw new RaftError('ERR_RAFT_INVALID_CONFIG', msg);
}

function posInt(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) invalidConfig(`${name} must be a positive integer`);
  return v;
}

/** Checks the options in a fixed order (the first bad one is named) and fills in the defaults. */
export function validateOptions(opts: RaftOptions): RaftConfig {
  if (typeof opts !== 'object' || opts === null) invalidConfig('options must be an object');
  const id = posInt(opts.id, 'id');
  const heartbeatTick = posInt(opts.heartbeatTick, 'heartbeatTick');
  const electionTick = posInt(opts.electionTick, 'electionTick');
  if (electionTick <= heartbeatTick) invalidConfig('electionTick must be greater than heartbeatTick');
  const maxInflightMsgs = posInt(opts.maxInflightMsgs ?? 256, 'maxInflightMsgs');
  const maxSizePerMsg = posInt(opts.maxSizePerMsg ?? 1 << 20, 'maxSizePerMsg');
  const maxCommittedSizePerReady = posInt(opts.maxCommittedSizePerReady ?? 64 << 20, 'maxCommittedSizePerReady');
  const checkQuorum = opts.checkQuorum ?? false;
  const preVote = opts.preVote ?? false;
  const readOnlyOption = opts.readOnlyOption ?? 'safe';
  if (readOnlyOption !== 'safe' && readOnlyOption !== 'leaseBased') {
    invalidConfig(`readOnlyOption must be 'safe' or 'leaseBased'`);
  }
  if (readOnlyOption === 'leaseBased' && !checkQuorum) {
    invalidConfig('readOnlyOption leaseBased requires checkQuorum');
  }
  if (typeof checkQuorum !== 'boolean' || typeof preVote !== 'boolean') {
    invalidConfig('checkQuorum and preVote must be booleans');
  }
  const random = opts.random ?? Math.random;
  if (typeof random !== 'function') invalidConfig('random must be a function');
  if (typeof opts.storage !== 'object' || opts.storage === null) invalidConfig('storage is required');
  return {
    id,
    storage: opts.storage,
    electionTick,
    heartbeatTick,
    maxSizePerMsg,
    maxCommittedSizePerReady,
    maxInflightMsgs,
    checkQuorum,
    preVote,
    readOnlyOption,
    random,
  };
}
