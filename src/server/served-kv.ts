/**
 * What the server needs from a store: etcd's KV, Lease and Watch calls (what `openStore` returns).
 * Optional maintenance calls (`status`, `hash`, `defragment`) are used when the store has them.
 */
import type { KVStore } from '../api/kv-store.ts';

export type ServedKV = Pick<
  KVStore,
  'range' | 'put' | 'deleteRange' | 'txn' | 'compact' | 'leaseGrant' | 'leaseRevoke' | 'leaseTimeToLive' |
  'leaseKeepAlive' | 'leaseLeases' | 'watchStream' | 'close'
>;
