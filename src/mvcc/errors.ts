import { BoltkvError } from '../errors.ts';

/**
 * The one error class of the revision layer and the KV/Lease API. `message` is exactly what an etcd
 * client sees for the same mistake, so code ported from etcd keeps working; `code` is stable and is
 * what callers should branch on.
 */
export type MvccErrorCode =
  | 'ERR_COMPACTED'
  | 'ERR_FUTURE_REV'
  | 'ERR_EMPTY_KEY'
  | 'ERR_LEASE_NOT_FOUND'
  | 'ERR_LEASE_EXISTS'
  | 'ERR_LEASE_TTL_TOO_LARGE'
  | 'ERR_DUPLICATE_KEY'
  | 'ERR_TOO_MANY_OPS'
  | 'ERR_KEY_NOT_FOUND'
  | 'ERR_VALUE_PROVIDED'
  | 'ERR_LEASE_PROVIDED'
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_CLOSED'
  | 'ERR_STORE_FAILED'
  | 'ERR_NO_SPACE'
  | 'ERR_UNSUPPORTED';

/** etcd's client-visible message for each code (gRPC status text). */
export const ETCD_MESSAGES: Readonly<Record<Exclude<MvccErrorCode, 'ERR_INVALID_ARGUMENT' | 'ERR_CLOSED' | 'ERR_STORE_FAILED' | 'ERR_NO_SPACE' | 'ERR_UNSUPPORTED'>, string>> = {
  ERR_COMPACTED: 'etcdserver: mvcc: required revision has been compacted',
  ERR_FUTURE_REV: 'etcdserver: mvcc: required revision is a future revision',
  ERR_EMPTY_KEY: 'etcdserver: key is not provided',
  ERR_LEASE_NOT_FOUND: 'etcdserver: requested lease not found',
  ERR_LEASE_EXISTS: 'etcdserver: lease already exists',
  ERR_LEASE_TTL_TOO_LARGE: 'etcdserver: too large lease TTL',
  ERR_DUPLICATE_KEY: 'etcdserver: duplicate key given in txn request',
  ERR_TOO_MANY_OPS: 'etcdserver: too many operations in txn request',
  ERR_KEY_NOT_FOUND: 'etcdserver: key not found',
  ERR_VALUE_PROVIDED: 'etcdserver: value is provided',
  ERR_LEASE_PROVIDED: 'etcdserver: lease is provided',
};

export class MvccError extends BoltkvError {
  declare readonly code: MvccErrorCode;
  constructor(code: MvccErrorCode, message?: string, options?: { cause?: unknown }) {
    super(code, message ?? (ETCD_MESSAGES as Record<string, string>)[code] ?? code, options);
    this.name = 'MvccError';
  }
}

/** Shorthand for the etcd errors, which always use etcd's message. */
export function etcdError(code: keyof typeof ETCD_MESSAGES): MvccError {
  return new MvccError(code, ETCD_MESSAGES[code]);
}
