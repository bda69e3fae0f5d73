/**
 * etcd's KV and Lease requests and responses as plain objects with camelCase fields. Byte fields
 * accept a string (UTF-8) for convenience and always come back as Uint8Array (Buffer views).
 *
 * int64: lease IDs are lossless (`bigint` in responses; bigint, safe-integer number or decimal string
 * accepted), because real etcd hands out IDs far above 2^53. Revisions, versions and counts are JS
 * numbers in responses; as input they also accept bigint or a decimal string, and a revision beyond
 * 2^53 is simply in the future (etcd's "future revision"), not a type error.
 */
import type { KeyValue } from './types.ts';

export type BytesLike = Uint8Array | string;

/** An int64 as a caller may give it: a safe-integer number, a bigint, or a decimal string. */
export type Int64Like = number | bigint | string;

export interface ResponseHeader {
  /** The store's current revision when the request finished (not the one asked for). */
  revision: number;
  /** Set by remote implementations (etcd's uint64 ids); absent in process. */
  clusterId?: bigint;
  memberId?: bigint;
  raftTerm?: number;
}

export type SortOrder = 'NONE' | 'ASCEND' | 'DESCEND';
export type SortTarget = 'KEY' | 'VERSION' | 'CREATE' | 'MOD' | 'VALUE';

export interface RangeRequest {
  key: BytesLike;
  /** Empty: just `key`; "\0": every key ≥ key; otherwise [key, rangeEnd). */
  rangeEnd?: BytesLike;
  limit?: Int64Like;
  /** ≤ 0: current revision. */
  revision?: Int64Like;
  sortOrder?: SortOrder;
  sortTarget?: SortTarget;
  /** Accepted for compatibility; an in-process store is always linearizable. */
  serializable?: boolean;
  keysOnly?: boolean;
  countOnly?: boolean;
  minModRevision?: Int64Like;
  maxModRevision?: Int64Like;
  minCreateRevision?: Int64Like;
  maxCreateRevision?: Int64Like;
}

export interface RangeResponse {
  header: ResponseHeader;
  kvs: KeyValue[];
  more: boolean;
  count: number;
}

export interface PutRequest {
  key: BytesLike;
  value?: BytesLike;
  /** 0 or absent: no lease. */
  lease?: Int64Like;
  prevKv?: boolean;
  ignoreValue?: boolean;
  ignoreLease?: boolean;
}

export interface PutResponse {
  header: ResponseHeader;
  prevKv?: KeyValue;
}

export interface DeleteRangeRequest {
  key: BytesLike;
  rangeEnd?: BytesLike;
  prevKv?: boolean;
}

export interface DeleteRangeResponse {
  header: ResponseHeader;
  deleted: number;
  prevKvs: KeyValue[];
}

export type CompareTarget = 'VERSION' | 'CREATE' | 'MOD' | 'VALUE' | 'LEASE';
export type CompareResult = 'EQUAL' | 'GREATER' | 'LESS' | 'NOT_EQUAL';

export interface Compare {
  key: BytesLike;
  rangeEnd?: BytesLike;
  target: CompareTarget;
  result: CompareResult;
  /** The operand for the chosen target (unset operands compare as 0 / empty). */
  version?: Int64Like;
  createRevision?: Int64Like;
  modRevision?: Int64Like;
  value?: BytesLike;
  lease?: Int64Like;
}

export type RequestOp =
  | { requestRange: RangeRequest }
  | { requestPut: PutRequest }
  | { requestDeleteRange: DeleteRangeRequest }
  | { requestTxn: TxnRequest };

export type ResponseOp =
  | { responseRange: RangeResponse }
  | { responsePut: PutResponse }
  | { responseDeleteRange: DeleteRangeResponse }
  | { responseTxn: TxnResponse };

export interface TxnRequest {
  compare?: Compare[];
  success?: RequestOp[];
  failure?: RequestOp[];
}

export interface TxnResponse {
  header: ResponseHeader;
  succeeded: boolean;
  responses: ResponseOp[];
}

export interface CompactionRequest {
  revision: Int64Like;
  /** Resolve only once old revisions are physically removed. */
  physical?: boolean;
}

export interface CompactionResponse {
  header: ResponseHeader;
}

export interface LeaseGrantRequest {
  /** Seconds. Below the minimum TTL it is raised to it, as etcd does. */
  TTL: number;
  /** 0 or absent: the store picks one. */
  ID?: Int64Like;
}

export interface LeaseGrantResponse {
  header: ResponseHeader;
  ID: bigint;
  TTL: number;
}

export interface LeaseRevokeRequest {
  ID: Int64Like;
}

export interface LeaseRevokeResponse {
  header: ResponseHeader;
}

export interface LeaseTimeToLiveRequest {
  ID: Int64Like;
  keys?: boolean;
}

export interface LeaseTimeToLiveResponse {
  header: ResponseHeader;
  ID: bigint;
  /** Remaining seconds, -1 when the lease is expired or unknown. */
  TTL: number;
  grantedTTL: number;
  keys: Uint8Array[];
}

export interface LeaseKeepAliveRequest {
  ID: Int64Like;
}

export interface LeaseKeepAliveResponse {
  header: ResponseHeader;
  ID: bigint;
  TTL: number;
}

export interface LeaseLeasesResponse {
  header: ResponseHeader;
  leases: { ID: bigint }[];
}

/** etcd's maintenance StatusResponse; raft fields are absent in process (no raft). */
export interface StatusResponse {
  header: ResponseHeader;
  /** Server version, etcd's "3.4.x" style. */
  version: string;
  /** Bytes the backend occupies (bolt: pages up to the high-water mark). */
  dbSize: number;
  /** Bytes in use: dbSize less free pages. */
  dbSizeInUse: number;
  leader?: bigint;
  raftIndex?: number;
  raftTerm?: number;
  raftAppliedIndex?: number;
  isLearner?: boolean;
  errors: string[];
}

/** A request as the replication layer hands it to `apply` (etcd's InternalRaftRequest, the state-changing part). */
export type ApplyRequest =
  | { put: PutRequest }
  | { deleteRange: DeleteRangeRequest }
  | { txn: TxnRequest }
  | { compaction: CompactionRequest }
  | { leaseGrant: LeaseGrantRequest }
  | { leaseRevoke: LeaseRevokeRequest };

export type ApplyResponse =
  | { put: PutResponse }
  | { deleteRange: DeleteRangeResponse }
  | { txn: TxnResponse }
  | { compaction: CompactionResponse }
  | { leaseGrant: LeaseGrantResponse }
  | { leaseRevoke: LeaseRevokeResponse };
