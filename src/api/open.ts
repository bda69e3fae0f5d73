/**
 * openStore: the package's entry point to the KV/Lease/Watch API.
 *   openStore('data.db')              a bolt file (created if missing)
 *   openStore({ backend })            any Backend (e.g. new MemoryBackend())
 *   openStore({ inMemory: true })     no file at all
 */
import type { OpenOptions } from '../bolt/index.ts';
import type { Backend } from '../mvcc/backend.ts';
import { MemoryBackend } from '../mvcc/backend/memory.ts';
import { MvccError } from '../mvcc/errors.ts';
import { MvccStore, type MvccStoreOptions } from '../mvcc/store.ts';
import type { WatchHubOptions } from '../watch/types.ts';
import { KVStore } from './kv-store.ts';

export interface StoreOptions extends Omit<MvccStoreOptions, 'backend'> {
  /** Options of the bolt file (used with a path). */
  bolt?: OpenOptions;
  watch?: WatchHubOptions;
  /** etcd's --quota-backend-bytes: 0 (default) is 2 GiB, a negative number turns the quota off. */
  quotaBackendBytes?: number;
}

export type OpenTarget =
  | (StoreOptions & { backend: Backend })
  | (StoreOptions & { inMemory: true });

export async function openStore(path: string, options?: StoreOptions): Promise<KVStore>;
export async function openStore(target: OpenTarget): Promise<KVStore>;
export async function openStore(target: string | OpenTarget, options: StoreOptions = {}): Promise<KVStore> {
  let backend: Backend;
  let opts: StoreOptions;
  if (typeof target === 'string') {
    if (target.length === 0) throw new MvccError('ERR_INVALID_ARGUMENT', 'boltkv: openStore needs a file path');
    const { BoltBackend } = await import('../mvcc/backend/bolt.ts');
    backend = BoltBackend.open(target, options.bolt ?? {});
    opts = options;
  } else if (target !== null && typeof target === 'object' && 'backend' in target && target.backend !== undefined) {
    backend = target.backend;
    opts = target;
  } else if (target !== null && typeof target === 'object' && 'inMemory' in target && target.inMemory === true) {
    backend = new MemoryBackend();
    opts = target;
  } else {
    throw new MvccError('ERR_INVALID_ARGUMENT', 'boltkv: openStore(path, options), openStore({ backend }) or openStore({ inMemory: true })');
  }
  let store: MvccStore;
  try {
    store = MvccStore.open({ ...opts, backend });
  } catch (e) {
    if (typeof target === 'string') await backend.close();
    throw e;
  }
  return new KVStore(store, opts.watch, { backend, quotaBackendBytes: opts.quotaBackendBytes });
}
