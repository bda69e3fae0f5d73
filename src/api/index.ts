/** The in-process etcd-style API: KV, Lease and Watch over the revision layer. */
export { openStore, type StoreOptions, type OpenTarget } from './open.ts';
export { KVStore, type GetOptions, type DeleteOptions, type SetOptions, type KeyRangeOptions } from './kv-store.ts';
export { prefixEnd } from '../mvcc/store.ts';
export { MvccError, type MvccErrorCode } from '../mvcc/errors.ts';
export { MemoryBackend } from '../mvcc/backend/memory.ts';
export { BoltBackend } from '../mvcc/backend/bolt.ts';
export type { Backend, BackendReader, BackendWriter, ScanVisitor } from '../mvcc/backend.ts';
export type * from '../mvcc/requests.ts';
export type { KeyValue, Event, RevisionBatch, EventSource } from '../mvcc/types.ts';
