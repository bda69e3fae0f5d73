/**
 * Maintenance: etcd's Maintenance service as a contract, apart from KV as clientv3 keeps it apart
 * (`clientv3.Maintenance`). The in-process store, the network client and a replicated member all
 * implement it, so operator tools (the CLI's defrag, snapshot save, endpoint hashkv/status, alarm)
 * run the same against a file opened here or a server reached over the network.
 */
import type { ResponseHeader, StatusResponse } from '../mvcc/requests.ts';
import type { AlarmMember } from './quota.ts';

export type { AlarmMember, AlarmType } from './quota.ts';

/** etcd's HashKVResponse. */
export interface HashKVResponse {
  header: ResponseHeader;
  /** CRC-32C of the key space up to the asked revision, as etcd computes it (uint32). */
  hash: number;
  /** The compaction the hash was taken against (-1 before any). */
  compactRevision: number;
}

/** etcd's AlarmResponse. etcd 3.4 answers without a header; the in-process store gives one. */
export interface AlarmResponse {
  header?: ResponseHeader;
  alarms: AlarmMember[];
}

/** etcd's DefragmentResponse (an implementation may add what it measured). */
export interface DefragmentResponse {
  header?: ResponseHeader;
}

export interface SnapshotOptions {
  /** Stops the copy; the stream then ends with an error. */
  signal?: AbortSignal;
}

export interface Maintenance {
  /** etcd's Maintenance.Status of the member that answers. */
  status(): Promise<StatusResponse>;
  /** etcd's HashKV: the key space's hash at `revision` (0 or omitted: the current one). */
  hashKV(revision?: number): Promise<HashKVResponse>;
  /** Rewrite the member's file densely (boltkv: online; etcd: writes stop meanwhile). */
  defragment(): Promise<DefragmentResponse>;
  /**
   * The member's whole database as etcd's Snapshot RPC sends it: the bolt file image of one
   * revision, then its SHA-256 (32 bytes); what `etcdctl snapshot save` writes to disk.
   */
  snapshot(options?: SnapshotOptions): AsyncIterable<Uint8Array>;
  /** The raised alarms. */
  alarmList(): Promise<AlarmResponse>;
  /**
   * Clear exactly the (member, type) alarm given, or without one every raised alarm (clientv3's
   * AlarmDisarm with an empty member, what `etcdctl alarm disarm` does); answers the alarms cleared.
   */
  alarmDisarm(alarm?: AlarmMember): Promise<AlarmResponse>;
}
