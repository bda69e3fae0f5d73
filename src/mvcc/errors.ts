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
  | 'ERR_UNKNOWN_FIELD'
  | 'ERR_REQUEST_TOO_LARGE'
  | 'ERR_CORRUPT'
  | 'ERR_NO_SPACE'
  | 'ERR_CORRUPT_CLUSTER'
  | 'ERR_UNSUPPORTED';

/** etcd's client-visible message for each code (gRPC status text). */
export const ETCD_MESSAGES: Readonly<
  Record<
    Exclude<
      MvccErrorCode,
      | 'ERR_INVALID_ARGUMENT'
      | 'ERR_CLOSED'
      | 'ERR_STORE_FAILED'
      | 'ERR_UNKNOWN_FIELD'
      | 'ERR_CORRUPT'
      | 'ERR_NO_SPACE'
      | 'ERR_CORRUPT_CLUSTER'
      | 'ERR_UNSUPPORTED'
    >,
    string
  >
> = {
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
  ERR_REQUEST_TOO_LARGE: 'etcdserver: request is too large',
};

export interface MvccErrorDetails {
  cause?: unknown;
  /** ERR_UNKNOWN_FIELD / ERR_INVALID_ARGUMENT: the request field or option at fault. */
  field?: string;
  /** ERR_CORRUPT: the bucket and the key (hex) of the damaged record. */
  bucket?: string;
  key?: string;
}

export class MvccError extends BoltkvError {
  declare readonly code: MvccErrorCode;
  readonly field?: string;
  readonly bucket?: string;
  readonly key?: string;
  constructor(code: MvccErrorCode, message?: string, details?: MvccErrorDetails) {
    super(
      code,
      message ?? (ETCD_MESSAGES as Record<string, string>)[code] ?? code,
      details?.cause === undefined ? undefined : { cause: details.cause },
    );
    this.name = 'MvccError';
    if (details?.field !== undefined) this.field = details.field;
    if (details?.bucket !== undefined) this.bucket = details.bucket;
    if (details?.key !== undefined) this.key = details.key;
  }
}

/**
 * A record of the revision layer that cannot be what boltkv wrote: the file is damaged (not a boltkv
 * bug). Names the bucket and the key so an operator can find it.
 */
export function corruption(bucket: string, key: Uint8Array | string, reason: string): MvccError {
  const k = typeof key === 'string' ? key : Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('hex');
  return new MvccError('ERR_CORRUPT', `boltkv: damaged record in bucket "${bucket}" at key ${k}: ${reason}`, {
    bucket,
    key: k,
  });
}

/** Shorthand for the etcd errors, which always use etcd's message. */
export function etcdError(code: keyof typeof ETCD_MESSAGES): MvccError {
  return new MvccError(code, ETCD_MESSAGES[code]);
}
