/**
 * etcd's space quota and NOSPACE alarm. A write that would take the backend past
 * `quotaBackendBytes` is refused with "mvcc: database space exceeded" and raises the NOSPACE alarm;
 * while the alarm is raised every write that adds data (puts, txns with puts, lease grants) is
 * refused, whatever the size — reads, deletes and compaction go on. Compact, defragment, then
 * disarm the alarm to write again (and if the file is still too big, the next write raises it again).
 * An operator may raise NOSPACE by hand too (etcd's Alarm ACTIVATE): it caps writes the same way.
 * The cost of a request is etcd's estimate, so the same requests hit the limit at the same point.
 */
import { MvccError } from '../mvcc/errors.ts';
import type { PutRequest, RequestOp, TxnRequest } from '../mvcc/requests.ts';

/** etcd's default quota (--quota-backend-bytes 0): 2 GiB. */
export const DEFAULT_QUOTA_BYTES = 2 * 1024 * 1024 * 1024;
const KV_OVERHEAD = 256;
/** etcd's cost of a lease grant. */
export const LEASE_COST = 64;

/** etcd's alarm types: NOSPACE caps writes that add data, CORRUPT refuses every write. */
export type AlarmType = 'NOSPACE' | 'CORRUPT';

export interface AlarmMember {
  memberId: bigint;
  alarm: AlarmType;
}

export function noSpace(): MvccError {
  return new MvccError('ERR_NO_SPACE', 'etcdserver: mvcc: database space exceeded');
}

function byteLength(v: unknown): number {
  if (v instanceof Uint8Array) return v.length;
  if (typeof v === 'string') return Buffer.byteLength(v);
  return 0;
}

export function costPut(r: PutRequest): number {
  return KV_OVERHEAD + byteLength(r.key) + byteLength(r.value);
}

function costOps(ops: readonly RequestOp[] | undefined): number {
  let n = 0;
  for (const op of ops ?? []) if (op && typeof op === 'object' && 'requestPut' in op) n += costPut(op.requestPut);
  return n;
}

/** The larger of the two branches: only one of them runs. */
export function costTxn(r: TxnRequest): number {
  return Math.max(costOps(r?.success), costOps(r?.failure));
}

/** The quota's limit and the backend's size; which alarms are raised is the alarm store's (alarm-store.ts). */
export class SpaceQuota {
  /**
   * `limit`: bytes; 0 means etcd's default, a negative number turns the quota off. `size`: the
   * backend's current size in bytes (the file's pages up to the high-water mark).
   */
  constructor(
    limit: number,
    private readonly size: () => number,
  ) {
    if (!Number.isSafeInteger(limit))
      throw new MvccError('ERR_INVALID_ARGUMENT', 'boltkv: quotaBackendBytes must be an integer');
    this.limit = limit === 0 ? DEFAULT_QUOTA_BYTES : limit;
  }

  readonly limit: number;

  get enabled(): boolean {
    return this.limit > 0;
  }

  /** True when a write of this cost does not fit: the caller refuses it and raises NOSPACE. */
  exceeds(cost: number): boolean {
    return this.enabled && cost > 0 && this.size() + cost >= this.limit;
  }
}
