/**
 * etcd's space quota and NOSPACE alarm. A write that would take the backend past
 * `quotaBackendBytes` is refused with "mvcc: database space exceeded" and raises the NOSPACE alarm;
 * while the alarm is raised every write that adds data (puts, txns with puts, lease grants) is
 * refused, whatever the size — reads, deletes and compaction go on. Compact, defragment, then
 * disarm the alarm to write again (and if the file is still too big, the next write raises it again).
 * The cost of a request is etcd's estimate, so the same requests hit the limit at the same point.
 */
import { MvccError } from '../mvcc/errors.ts';
import type { PutRequest, RequestOp, TxnRequest } from '../mvcc/requests.ts';

/** etcd's default quota (--quota-backend-bytes 0): 2 GiB. */
export const DEFAULT_QUOTA_BYTES = 2 * 1024 * 1024 * 1024;
const KV_OVERHEAD = 256;
/** etcd's cost of a lease grant. */
export const LEASE_COST = 64;

export type AlarmType = 'NOSPACE';

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

export class SpaceQuota {
  private alarmed = false;

  /**
   * `limit`: bytes; 0 means etcd's default, a negative number turns the quota off. `size`: the
   * backend's current size in bytes (the file's pages up to the high-water mark).
   */
  constructor(
    limit: number,
    private readonly size: () => number,
    private readonly memberId: bigint = 0n,
  ) {
    if (!Number.isSafeInteger(limit))
      throw new MvccError('ERR_INVALID_ARGUMENT', 'boltkv: quotaBackendBytes must be an integer');
    this.limit = limit === 0 ? DEFAULT_QUOTA_BYTES : limit;
  }

  readonly limit: number;

  get enabled(): boolean {
    return this.limit > 0;
  }

  /** Refuse (and raise the alarm) when a write of this cost does not fit; with the alarm up, refuse any cost > 0. */
  check(cost: number): void {
    if (!this.enabled || cost <= 0) return;
    if (this.alarmed) throw noSpace();
    if (this.size() + cost < this.limit) return;
    this.alarmed = true;
    throw noSpace();
  }

  alarms(): AlarmMember[] {
    return this.alarmed ? [{ memberId: this.memberId, alarm: 'NOSPACE' }] : [];
  }

  /** etcd's alarm disarm: clears NOSPACE (the quota is checked again on the next write). */
  disarm(): AlarmMember[] {
    const was = this.alarms();
    this.alarmed = false;
    return was;
  }
}
