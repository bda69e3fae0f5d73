/**
 * Options of the revision layer, checked once when a store opens: a wrongly typed option is a typed
 * error, never a silent default or a NaN that breaks lease expiry later; an unknown one is refused.
 */
import type { Backend } from './backend.ts';
import { MvccError } from './errors.ts';
import { DEFAULT_MAX_REQUEST_BYTES } from './request-size.ts';
import { boolOption, fnOption, intOption, noUnknownFields } from './validate.ts';

export interface MvccStoreOptions {
  backend: Backend;
  /** Close the backend when the store closes. Default true. */
  closeBackend?: boolean;
  /**
   * Revisions deleted per compaction batch (default 1000, etcd's batch size; etcd counts revisions
   * examined, kept ones included, which makes twice the batches in a typical compaction).
   */
  compactionBatchLimit?: number;
  /**
   * Least time between compaction deletion batches in ms. Default 2: a batch rides on the writers'
   * commit instead of holding them behind one of its own (etcd pauses 10 ms because its batches do
   * hold its writers), so the pause only bounds how many of their commits carry one.
   */
  compactionBatchIntervalMs?: number;
  /** Clock for lease expiry, in ms. Default Date.now. */
  now?: () => number;
  /** How often expired leases are looked for, in ms; 0 disables the timer. Default 500. */
  leaseCheckIntervalMs?: number;
  /**
   * Revoke expired leases locally (timer, and before each write). Turn off when a replication layer
   * decides expiry and applies leaseRevoke itself. Default true.
   */
  autoExpireLeases?: boolean;
  /** Shortest lease TTL in seconds; shorter grants are raised to it (etcd 3.4's default is 2). */
  minLeaseTTL?: number;
  /**
   * Largest write request (put, deleteRange, txn) in bytes, measured as etcd measures it (the
   * encoded raft request); larger ones fail with ERR_REQUEST_TOO_LARGE. Default 1.5 MiB (etcd's).
   */
  maxRequestBytes?: number;
}

export type ResolvedStoreOptions = Required<Omit<MvccStoreOptions, 'backend'>>;

export const STORE_OPTION_NAMES = [
  'backend',
  'closeBackend',
  'compactionBatchLimit',
  'compactionBatchIntervalMs',
  'now',
  'leaseCheckIntervalMs',
  'autoExpireLeases',
  'minLeaseTTL',
  'maxRequestBytes',
] as const;

export function parseStoreOptions(
  o: Omit<MvccStoreOptions, 'backend'> & { backend?: Backend },
  extra: readonly string[] = [],
): ResolvedStoreOptions {
  if (o === null || typeof o !== 'object')
    throw new MvccError('ERR_INVALID_ARGUMENT', 'boltkv: store options must be an object');
  noUnknownFields(o as unknown as Record<string, unknown>, [...STORE_OPTION_NAMES, ...extra], 'store options');
  const now = fnOption<() => number>(o.now, 'now', Date.now);
  return {
    closeBackend: boolOption(o.closeBackend, 'closeBackend', true),
    compactionBatchLimit: intOption(o.compactionBatchLimit, 'compactionBatchLimit', 1000, 1),
    compactionBatchIntervalMs: intOption(o.compactionBatchIntervalMs, 'compactionBatchIntervalMs', 2, 0, 2 ** 31 - 1),
    now: () => {
      const t = now();
      if (typeof t !== 'number' || !Number.isFinite(t))
        throw new MvccError('ERR_INVALID_ARGUMENT', 'boltkv: option now must return a finite number of ms', {
          field: 'now',
        });
      return t;
    },
    leaseCheckIntervalMs: intOption(o.leaseCheckIntervalMs, 'leaseCheckIntervalMs', 500, 0, 2 ** 31 - 1),
    autoExpireLeases: boolOption(o.autoExpireLeases, 'autoExpireLeases', true),
    minLeaseTTL: intOption(o.minLeaseTTL, 'minLeaseTTL', 2, 1, 9_000_000_000),
    maxRequestBytes: intOption(o.maxRequestBytes, 'maxRequestBytes', DEFAULT_MAX_REQUEST_BYTES, 1),
  };
}
