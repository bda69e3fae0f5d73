/**
 * etcd's KV and Lease requests and responses as plain objects with camelCase fields. Byte fields
 * accept a string (UTF-8) for convenience and always come back as Uint8Array; int64 fields are JS
 * numbers (exact to 2^53).
 */
import type { KeyValue } from './types.ts';

export type BytesLike = Uint8Array | string;

export interface ResponseHeader {
  /** The store's current revision when the request finished (not the one asked for). */
  revision: number;
  clusterId?: number;
  memberId?: number;
  raftTerm?: number;
}

export type SortOrder = 'NONE' | 'ASCEND' | 'DESCEND';
export type SortTarget = 'KEY' | 'VERSION' | 'CREATE' | 'MOD' | 'VALUE';

export interface RangeRequest {
  key: BytesLike;
  /** Empty: just `key`; "\0": every key ≥ key; otherwise [key, rangeEnd). */
  rangeEnd?: BytesLike;
  limit?: number;
  /** ≤ 0: current revision. */
  revision?: number;
  sortOrder?: SortOrder;
  sortTarget?: SortTarget;
  /** Accepted for compatibility; an in-process store is always linearizable. */
  serializable?: boolean;
  keysOnly?: boolean;
  countOnly?: boolean;
  minModRevision?: number;
  maxModRevision?: number;
  minCreateRevision?: number;
  maxCreateRevision?: number;
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
  lease?: number;
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
  version?: number;
  createRevision?: number;
  modRevision?: number;
  value?: BytesLike;
  lease?: number;
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
  revision: number;
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
  ID?: number;
}

export interface LeaseGrantResponse {
  header: ResponseHeader;
  ID: number;
  TTL: number;
}

export interface LeaseRevokeRequest {
  ID: number;
}

export interface LeaseRevokeResponse {
  header: ResponseHeader;
}

export interface LeaseTimeToLiveRequest {
  ID: number;
  keys?: boolean;
}

export interface LeaseTimeToLiveResponse {
  header: ResponseHeader;
  ID: number;
  /** Remaining seconds, -1 when the lease is expired or unknown. */
  TTL: number;
  grantedTTL: number;
  keys: Uint8Array[];
}

export interface LeaseKeepAliveRequest {
  ID: number;
}

export interface LeaseKeepAliveResponse {
  header: ResponseHeader;
  ID: number;
  TTL: number;
}

export interface LeaseLeasesResponse {
  header: ResponseHeader;
  leases: { ID: number }[];
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
