/** The in-process etcd-style API: KV, Lease and Watch over the revision layer. */
export { openStore, type StoreOptions, type OpenTarget } from './open.ts';
export { KVStore, SERVER_VERSION, type AlarmResponse } from './kv-store.ts';
export { DEFAULT_QUOTA_BYTES, type AlarmMember, type AlarmType } from './quota.ts';
export type { Maintenance, HashKVResponse, DefragmentResponse, SnapshotOptions } from './maintenance.ts';
export type { KV, GetOptions, DeleteOptions, SetOptions, KeyRangeOptions } from './kv.ts';
export { prefixEnd } from './prefix.ts';
export { MvccError, type MvccErrorCode } from '../mvcc/errors.ts';
export { MemoryBackend } from '../mvcc/backend/memory.ts';
export { BoltBackend } from '../mvcc/backend/bolt.ts';
export type { Backend, BackendReader, BackendWriter, ScanVisitor } from '../mvcc/backend.ts';
export type * from '../mvcc/requests.ts';
export type { KeyValue, Event, RevisionBatch, EventSource } from '../mvcc/types.ts';
