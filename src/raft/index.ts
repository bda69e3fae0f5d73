/** boltkv/raft: an I/O-free raft consensus core with learners, shaped like etcd-io/raft. */
export { RawNode } from './rawnode.ts';
export type { Ready, RawNodeOptions } from './rawnode.ts';
export type { RaftOptions } from './raft.ts';
export { MemoryStorage } from './storage.ts';
export type { Storage } from './storage.ts';
export { RaftError, RaftPanic, isRaftError } from './errors.ts';
export type { RaftErrorCode } from './errors.ts';
export { encodeMessage, decodeMessage, encodeConfChange, decodeConfChange } from './codec.ts';
export { checkLearnerPromotion, DEFAULT_PROMOTION_THRESHOLD } from './promotion.ts';
export type { PromotionVerdict } from './promotion.ts';
export type { Status, PeerStatus } from './status.ts';
export type { ProgressState } from './progress.ts';
export { NONE, isEmptySnapshot, isEmptyHardState } from './types.ts';
export type {
  ConfChange,
  ConfChangeType,
  ConfState,
  Entry,
  EntryType,
  HardState,
  Message,
  MessageType,
  NodeId,
  ReadOnlyOption,
  ReadState,
  Snapshot,
  SnapshotMetadata,
  SnapshotStatus,
  SoftState,
  StateType,
} from './types.ts';
