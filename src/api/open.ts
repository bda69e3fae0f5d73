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
import { STORE_OPTION_NAMES, parseStoreOptions } from '../mvcc/options.ts';
import { noUnknownFields, objOption } from '../mvcc/validate.ts';
import type { WatchHubOptions } from '../watch/types.ts';
import { KVStore } from './kv-store.ts';

export interface StoreOptions extends Omit<MvccStoreOptions, 'backend'> {
  /** Options of the bolt file (used with a path). */
  bolt?: OpenOptions;
  watch?: WatchHubOptions;
  /** etcd's --quota-backend-bytes: 0 (default) is 2 GiB, a negative number turns the quota off. */
  quotaBackendBytes?: number;
}

export type OpenTarget = (StoreOptions & { backend: Backend }) | (StoreOptions & { inMemory: true });

export async function openStore(path: string, options?: StoreOptions): Promise<KVStore>;
export async function openStore(target: OpenTarget): Promise<KVStore>;
export async function openStore(target: string | OpenTarget, options?: StoreOptions): Promise<KVStore> {
  let opts: StoreOptions & { inMemory?: unknown; backend?: unknown };
  if (typeof target === 'string') {
    if (target.length === 0) throw new MvccError('ERR_INVALID_ARGUMENT', 'boltkv: openStore needs a file path');
    opts = objOption(options, 'openStore options') as StoreOptions;
    if ('backend' in opts || 'inMemory' in opts)
      throw new MvccError(
        'ERR_INVALID_ARGUMENT',
        'boltkv: openStore(path, options) takes no backend or inMemory option',
      );
  } else if (target !== null && typeof target === 'object' && !Array.isArray(target)) {
    opts = target;
  } else {
    throw new MvccError(
      'ERR_INVALID_ARGUMENT',
      'boltkv: openStore(path, options), openStore({ backend }) or openStore({ inMemory: true })',
    );
  }
  // every option is checked before a file is opened
  const { bolt, watch, inMemory, backend: given, quotaBackendBytes, ...storeOpts } = opts;
  noUnknownFields(
    opts as Record<string, unknown>,
    [...STORE_OPTION_NAMES, 'bolt', 'watch', 'inMemory', 'quotaBackendBytes'],
    'openStore options',
  );
  if (quotaBackendBytes !== undefined && !Number.isSafeInteger(quotaBackendBytes)) {
    throw new MvccError('ERR_INVALID_ARGUMENT', 'boltkv: quotaBackendBytes must be an integer');
  }
  parseStoreOptions(storeOpts);
  const watchOpts = objOption(watch, 'watch') as WatchHubOptions;
  const boltOpts = objOption(bolt, 'bolt') as OpenOptions;
  let backend: Backend;
  if (typeof target === 'string') {
    const { BoltBackend } = await import('../mvcc/backend/bolt.ts');
    backend = BoltBackend.open(target, boltOpts);
  } else if (given !== undefined && inMemory === undefined) {
    backend = given as Backend;
  } else if (inMemory === true && given === undefined) {
    backend = new MemoryBackend();
  } else {
    throw new MvccError(
      'ERR_INVALID_ARGUMENT',
      'boltkv: openStore(path, options), openStore({ backend }) or openStore({ inMemory: true })',
    );
  }
  let store: MvccStore;
  try {
    store = MvccStore.open({ ...storeOpts, backend });
  } catch (e) {
    if (typeof target === 'string') await backend.close();
    throw e;
  }
  return new KVStore(store, watchOpts, { backend, quotaBackendBytes });
}
