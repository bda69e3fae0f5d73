/**
 * etcd's alarm store (etcdserver/api/v3alarm): the raised alarms, each a (member, type) pair, kept
 * in memory and in the backend's `alarm` bucket (key: the AlarmMember message in protobuf, value
 * empty), so they survive a restart as etcd's do. Changes come back as backend writes for the
 * caller to commit: the in-process store commits them at once, a replicated member with the apply
 * of the log entry that carried them. Decides only; no I/O.
 */
import { MvccError } from '../mvcc/errors.ts';
import type { BackendReader, BackendWriter } from '../mvcc/backend.ts';
import type { AlarmMember, AlarmType } from './quota.ts';

export const ALARM_BUCKET = 'alarm';
const EMPTY = new Uint8Array(0);
/** etcd's AlarmType enum numbers. */
const TYPE_NUMBER: Record<AlarmType, number> = { NOSPACE: 1, CORRUPT: 2 };

/** What an alarm request asks (etcd's AlarmRequest with ACTIVATE or DEACTIVATE). */
export interface AlarmChange {
  action: 'activate' | 'deactivate';
  memberId: bigint;
  alarm: AlarmType;
}

/** A change to the backend, run inside the caller's write transaction. */
export type AlarmWrite = (w: BackendWriter) => void;

/** etcd's refusal of every write while the CORRUPT alarm is raised (gRPC DataLoss). */
export function corruptCluster(): MvccError {
  return new MvccError('ERR_CORRUPT_CLUSTER', 'etcdserver: corrupt cluster');
}

/** Checks an alarm given by a caller: a uint64 member id and a type boltkv knows. */
export function checkAlarmMember(a: unknown): AlarmMember {
  const o = (typeof a === 'object' && a !== null ? a : {}) as { memberId?: unknown; alarm?: unknown };
  if (typeof o.memberId !== 'bigint' || o.memberId < 0n || o.memberId >= 1n << 64n)
    throw new MvccError('ERR_INVALID_ARGUMENT', 'boltkv: invalid alarm: memberId must be a uint64 bigint');
  if (typeof o.alarm !== 'string' || !Object.hasOwn(TYPE_NUMBER, o.alarm))
    throw new MvccError('ERR_INVALID_ARGUMENT', 'boltkv: invalid alarm: alarm must be NOSPACE or CORRUPT');
  return { memberId: o.memberId, alarm: o.alarm as AlarmType };
}

/**
 * An alarm as etcd prints it in status errors and etcdctl prints it: protobuf's compact text, which
 * leaves out zero fields (member 0 prints as `alarm:NOSPACE `).
 */
export function alarmText(a: AlarmMember): string {
  return `${a.memberId !== 0n ? `memberID:${a.memberId} ` : ''}alarm:${a.alarm} `;
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

  /**
   * The raised alarms, by member id then type (etcd lists them in its maps' order); only those of
   * one type when `alarm` is given (etcd's GET with an alarm type).
   */
  list(alarm?: AlarmType): AlarmMember[] {
    return [...this.active.values()]
      .filter((a) => alarm === undefined || a.alarm === alarm)
      .sort((a, b) =>
        a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : TYPE_NUMBER[a.alarm] - TYPE_NUMBER[b.alarm],
      )
      .map((a) => ({ ...a }));
  }

  /** True when some member raised this alarm. */
  has(alarm: AlarmType): boolean {
    for (const a of this.active.values()) if (a.alarm === alarm) return true;
    return false;
  }

  /**
   * Applies one change. `answer` is what etcd's AlarmResponse carries: the alarm activated (also
   * when it was already raised) or deactivated (undefined when it was not raised); `changed` says
   * whether the set moved, and `writes` are the bucket changes that go with it.
   */
  apply(c: AlarmChange): { answer: AlarmMember | undefined; changed: boolean; writes: AlarmWrite[] } {
    const a: AlarmMember = { memberId: c.memberId, alarm: c.alarm };
    const k = keyOf(a);
    const key = encodeAlarmKey(a);
    if (c.action === 'activate') {
      if (this.active.has(k)) return { answer: { ...a }, changed: false, writes: [] };
      this.active.set(k, a);
      return { answer: { ...a }, changed: true, writes: [(w) => w.put(ALARM_BUCKET, key, EMPTY)] };
    }
    if (!this.active.delete(k)) return { answer: undefined, changed: false, writes: [] };
    return { answer: { ...a }, changed: true, writes: [(w) => w.delete(ALARM_BUCKET, key)] };
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

/** Decodes a key written by encodeAlarmKey (or etcd); undefined for a damaged key or an alarm type boltkv does not know. */
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
  for (const [name, n] of Object.entries(TYPE_NUMBER) as [AlarmType, number][])
    if (type === BigInt(n)) return { memberId, alarm: name };
  return undefined;
}
