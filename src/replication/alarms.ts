/**
 * The cluster's raised alarms (etcd's alarm store): every member applies the same AlarmRequest
 * entries from the log, so every member lists the same alarms, each naming the member that raised
 * it. Kept in the member's bolt file in etcd's `alarm` bucket (key: the AlarmMember message in
 * protobuf, value empty) and in memory; changes are returned as writes that ride the apply's commit,
 * as the member list does, so the alarms always match the applied index and travel with a snapshot.
 */
import { costTxn, type AlarmMember, type AlarmType } from '../api/quota.ts';
import type { ApplyRequest } from '../mvcc/requests.ts';
import type { BackendReader } from '../mvcc/backend.ts';
import type { RaftWrite } from './bolt-raft-storage.ts';

export const ALARM_BUCKET = 'alarm';
const EMPTY = new Uint8Array(0);
/** etcd's AlarmType enum numbers (CORRUPT is listed so a file written by etcd still loads). */
const TYPE_NUMBER: Record<AlarmType | 'CORRUPT', number> = { NOSPACE: 1, CORRUPT: 2 };

/** What an alarm entry asks (etcd's AlarmRequest with ACTIVATE or DEACTIVATE). */
export interface AlarmChange {
  action: 'activate' | 'deactivate';
  memberId: bigint;
  alarm: AlarmType;
}

export class AlarmStore {
  private active = new Map<string, AlarmMember>();

  static load(r: BackendReader): AlarmStore {
    const s = new AlarmStore();
    r.scan(ALARM_BUCKET, EMPTY, undefined, (k) => {
      const a = decodeAlarmKey(k);
      if (a !== undefined) s.active.set(keyOf(a), a);
    });
    return s;
  }

  reload(other: AlarmStore): void {
    this.active = other.active;
  }

  /** The raised alarms, by member id (etcd lists them in its store's order: member, then type). */
  list(): AlarmMember[] {
    return [...this.active.values()]
      .sort((a, b) => (a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0))
      .map((a) => ({ ...a }));
  }

  /** True when some member raised this alarm. */
  has(alarm: AlarmType): boolean {
    for (const a of this.active.values()) if (a.alarm === alarm) return true;
    return false;
  }

  /**
   * Applies one change. Answers the alarm that changed (etcd answers it in the AlarmResponse) or
   * undefined when nothing changed (already raised, or not raised), with the file writes.
   */
  apply(c: AlarmChange): { changed: AlarmMember | undefined; writes: RaftWrite[] } {
    const a: AlarmMember = { memberId: c.memberId, alarm: c.alarm };
    const k = keyOf(a);
    const key = encodeAlarmKey(a);
    if (c.action === 'activate') {
      if (this.active.has(k)) return { changed: undefined, writes: [] };
      this.active.set(k, a);
      return { changed: { ...a }, writes: [(w) => w.put(ALARM_BUCKET, key, EMPTY)] };
    }
    if (!this.active.delete(k)) return { changed: undefined, writes: [] };
    return { changed: { ...a }, writes: [(w) => w.delete(ALARM_BUCKET, key)] };
  }
}

function keyOf(a: AlarmMember): string {
  return `${a.memberId}:${a.alarm}`;
}

/** AlarmMember { uint64 memberID = 1; AlarmType alarm = 2; } in protobuf, as etcd keys its bucket. */
export function encodeAlarmKey(a: AlarmMember): Uint8Array {
  const out: number[] = [];
  if (a.memberId !== 0n) {
    out.push(0x08);
    varint(out, a.memberId);
  }
  out.push(0x10);
  varint(out, BigInt(TYPE_NUMBER[a.alarm]));
  return Uint8Array.from(out);
}

function varint(out: number[], v: bigint): void {
  let x = v;
  while (x >= 0x80n) {
    out.push(Number(x & 0x7fn) | 0x80);
    x >>= 7n;
  }
  out.push(Number(x));
}

/** Decodes a key written by encodeAlarmKey (or etcd); undefined for an alarm type boltkv does not raise. */
export function decodeAlarmKey(k: Uint8Array): AlarmMember | undefined {
  let memberId = 0n;
  let type = 0n;
  let i = 0;
  while (i < k.length) {
    const tag = k[i++]!;
    let v = 0n;
    let shift = 0n;
    for (;;) {
      if (i >= k.length) return undefined;
      const b = k[i++]!;
      v |= BigInt(b & 0x7f) << shift;
      shift += 7n;
      if ((b & 0x80) === 0) break;
    }
    if (tag === 0x08) memberId = v;
    else if (tag === 0x10) type = v;
    else return undefined;
  }
  return type === BigInt(TYPE_NUMBER.NOSPACE) ? { memberId, alarm: 'NOSPACE' } : undefined;
}

/**
 * etcd's capped applier: with NOSPACE raised, a request that adds data (a put, a txn with a put in
 * either branch, a lease grant) fails at apply on every member; deletes, compaction and revokes go on.
 */
export function addsData(req: ApplyRequest): boolean {
  if ('put' in req || 'leaseGrant' in req) return true;
  return 'txn' in req && costTxn(req.txn) > 0;
}
