/**
 * How the raft state lives in the member's bolt file, beside etcd's key/meta/lease buckets:
 *   raft_log    u64 big-endian index -> term (u64) | type (u8) | data
 *   raft_terms  u64 big-endian first index of a run of equal terms -> term (u64); see term-runs.ts
 *   raft_state  "hardstate" -> term | vote | commit (3 x u64)
 *               "dummy"     -> index | term of the entry just before the first stored one
 *               "snapshot"  -> index | term | voters | learners of the latest snapshot
 * Fixed-width big-endian fields: the bytes sort like the numbers and decode without a library.
 */
import type { ConfState, Entry, HardState, SnapshotMetadata } from '../raft/index.ts';
import { ReplicationError } from './errors.ts';

export const RAFT_LOG_BUCKET = 'raft_log';
export const RAFT_STATE_BUCKET = 'raft_state';
export const RAFT_TERMS_BUCKET = 'raft_terms';
const enc = new TextEncoder();
export const HARDSTATE_KEY = enc.encode('hardstate');
export const DUMMY_KEY = enc.encode('dummy');
export const SNAPSHOT_KEY = enc.encode('snapshot');

function putU64(b: Uint8Array, off: number, n: number): void {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  v.setUint32(off, Math.floor(n / 0x100000000));
  v.setUint32(off + 4, n >>> 0);
}

function getU64(b: Uint8Array, off: number): number {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return v.getUint32(off) * 0x100000000 + v.getUint32(off + 4);
}

function corrupt(what: string): ReplicationError {
  return new ReplicationError('ERR_CORRUPT', `raft state in the bolt file is damaged: ${what}`);
}

export function indexKey(i: number): Uint8Array {
  const b = new Uint8Array(8);
  putU64(b, 0, i);
  return b;
}

export function decodeIndexKey(k: Uint8Array): number {
  if (k.length !== 8) throw corrupt(`log key of ${k.length} bytes`);
  return getU64(k, 0);
}

export function encodeEntry(e: Entry): Uint8Array {
  const b = new Uint8Array(9 + e.data.length);
  putU64(b, 0, e.term);
  b[8] = e.type === 'confChange' ? 1 : 0;
  b.set(e.data, 9);
  return b;
}

export function decodeEntry(index: number, v: Uint8Array): Entry {
  if (v.length < 9 || (v[8] !== 0 && v[8] !== 1)) throw corrupt(`log entry ${index}`);
  // copy into a plain Uint8Array: bolt values are only valid inside their transaction (and may be
  // Buffers, whose slice() is a view, not a copy)
  const data = new Uint8Array(v.length - 9);
  data.set(v.subarray(9));
  return { index, term: getU64(v, 0), type: v[8] === 1 ? 'confChange' : 'normal', data };
}

/** The term of a stored entry, without copying its data. */
export function decodeEntryTerm(index: number, v: Uint8Array): number {
  if (v.length < 9) throw corrupt(`log entry ${index}`);
  return getU64(v, 0);
}

export function encodeTerm(term: number): Uint8Array {
  const b = new Uint8Array(8);
  putU64(b, 0, term);
  return b;
}

export function decodeTerm(v: Uint8Array): number {
  if (v.length !== 8) throw corrupt('term run');
  return getU64(v, 0);
}

export function encodeHardState(hs: HardState): Uint8Array {
  const b = new Uint8Array(24);
  putU64(b, 0, hs.term);
  putU64(b, 8, hs.vote);
  putU64(b, 16, hs.commit);
  return b;
}

export function decodeHardState(v: Uint8Array): HardState {
  if (v.length !== 24) throw corrupt('hard state');
  return { term: getU64(v, 0), vote: getU64(v, 8), commit: getU64(v, 16) };
}

export function encodeIndexTerm(index: number, term: number): Uint8Array {
  const b = new Uint8Array(16);
  putU64(b, 0, index);
  putU64(b, 8, term);
  return b;
}

export function decodeIndexTerm(v: Uint8Array): { index: number; term: number } {
  if (v.length !== 16) throw corrupt('dummy entry');
  return { index: getU64(v, 0), term: getU64(v, 8) };
}

export function encodeSnapshotMeta(m: SnapshotMetadata): Uint8Array {
  const { voters, learners } = m.confState;
  const b = new Uint8Array(24 + 8 * (voters.length + learners.length));
  putU64(b, 0, m.index);
  putU64(b, 8, m.term);
  b[16] = voters.length >>> 8;
  b[17] = voters.length & 0xff;
  let off = 24;
  for (const id of [...voters, ...learners]) {
    putU64(b, off, id);
    off += 8;
  }
  return b;
}

export function decodeSnapshotMeta(v: Uint8Array): SnapshotMetadata {
  if (v.length < 24 || (v.length - 24) % 8 !== 0) throw corrupt('snapshot metadata');
  const nv = (v[16]! << 8) | v[17]!;
  const n = (v.length - 24) / 8;
  if (nv > n) throw corrupt('snapshot metadata voter count');
  const ids: number[] = [];
  for (let i = 0; i < n; i++) ids.push(getU64(v, 24 + 8 * i));
  const confState: ConfState = { voters: ids.slice(0, nv), learners: ids.slice(nv) };
  return { index: getU64(v, 0), term: getU64(v, 8), confState };
}
