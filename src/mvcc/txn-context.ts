/**
 * The read and write transaction context (etcd's kvstore_txn): what one request sees and does. The
 * state is the key index, the lessor and the commit queue, shared by every request of one store.
 * Reads resolve the index to revision keys and read records from the overlay (not yet durable) or
 * the backend. A write transaction gives every change the revision after the current one, in order
 * of sub-revision; it bumps the current revision only if it changed something.
 */
import type { BackendReader } from './backend.ts';
import { KEY_BUCKET } from './buckets.ts';
import { decodeRecord, encodeKeyValue, encodeTombstone } from './codec.ts';
import type { CommitQueue } from './commit-queue.ts';
import { etcdError } from './errors.ts';
import type { KeyIndex } from './key-index.ts';
import type { Lessor } from './lessor.ts';
import type { DeleteRangeResponse, PutResponse, ResponseHeader } from './requests.ts';
import { revToBytes } from './revision.ts';
import type { Event, KeyValue } from './types.ts';
import type { NDelete, NPut } from './validate.ts';
import { bytesToByteString as bstr, byteStringToBytes, isFromKeyEnd } from '../keys.ts';
import { Panic } from '../errors.ts';

export const EMPTY: Uint8Array = Buffer.alloc(0);

/** The state every request of one store runs against. */
export interface StoreState {
  readonly index: KeyIndex;
  readonly lessor: Lessor;
  readonly queue: CommitQueue;
  /** Newest revision, including writes not yet durable. */
  currentRev: number;
  /** -1 until the first compaction, as in etcd. */
  compactMainRev: number;
}

export function header(rev: number): ResponseHeader {
  return { revision: rev };
}

/** The record at revision (main, sub), which must be a live value. */
export function readKv(s: StoreState, r: BackendReader, main: number, sub: number): KeyValue {
  const rk = revToBytes(main, sub);
  const raw = s.queue.overlay.get(bstr(rk)) ?? r.get(KEY_BUCKET, rk);
  if (raw === undefined) throw new Panic(`index points at missing revision ${main}_${sub}`);
  const rec = decodeRecord(raw, rk);
  if (rec.tombstone) throw new Panic('index points at a tombstone');
  return rec.kv;
}

/** The live value of a key right now (including the running transaction's own writes). */
export function liveKv(s: StoreState, r: BackendReader, ks: string): KeyValue | undefined {
  const hit = s.index.get(ks, Number.MAX_SAFE_INTEGER);
  return hit === undefined ? undefined : readKv(s, r, hit.main, hit.sub);
}

/** Live keys of [key, end) at `rev` (etcd's rangeEnd rules); up to `limit` values fetched (0: all). */
export function rangeKeys(
  s: StoreState,
  r: BackendReader,
  key: Uint8Array,
  end: Uint8Array,
  rev: number,
  limit: number,
  countOnly: boolean,
): { kvs: KeyValue[]; count: number } {
  const kvs: KeyValue[] = [];
  let count = 0;
  if (end.length === 0) {
    const hit = s.index.get(bstr(key), rev);
    if (hit !== undefined) {
      count = 1;
      if (!countOnly) kvs.push(readKv(s, r, hit.main, hit.sub));
    }
    return { kvs, count };
  }
  s.index.range(bstr(key), isFromKeyEnd(end) ? undefined : bstr(end), rev, (e) => {
    count++;
    if (!countOnly && (limit <= 0 || kvs.length < limit)) kvs.push(readKv(s, r, e.main, e.sub));
  });
  return { kvs, count };
}

/** Keys live now in [key, end) (etcd's rangeEnd rules), as byte-strings. */
export function liveKeys(s: StoreState, key: Uint8Array, end: Uint8Array): string[] {
  const out: string[] = [];
  if (end.length === 0) {
    const ks = bstr(key);
    if (s.index.current(ks) !== undefined) out.push(ks);
    return out;
  }
  s.index.range(bstr(key), isFromKeyEnd(end) ? undefined : bstr(end), Number.MAX_SAFE_INTEGER, (e) => {
    out.push(e.key);
  });
  return out;
}

/** One write transaction: its changes share revision beginRev + 1. */
export class WriteTxn {
  readonly events: Event[] = [];
  readonly beginRev: number;
  readonly #s: StoreState;
  readonly reader: BackendReader;

  constructor(s: StoreState, reader: BackendReader) {
    this.#s = s;
    this.reader = reader;
    this.beginRev = s.currentRev;
  }

  /** The revision a read inside this transaction sees (its own writes included). */
  get readRev(): number {
    return this.events.length > 0 ? this.beginRev + 1 : this.beginRev;
  }

  put(n: NPut): PutResponse {
    const s = this.#s;
    const ks = bstr(n.key);
    const prev = liveKv(s, this.reader, ks);
    if ((n.ignoreValue || n.ignoreLease) && prev === undefined) throw etcdError('ERR_KEY_NOT_FOUND');
    const value = n.ignoreValue ? prev!.value : n.value;
    const lease = n.ignoreLease ? prev!.lease : n.lease;
    const rev = this.beginRev + 1;
    const sub = this.events.length;
    const kv: KeyValue = {
      key: Buffer.from(n.key),
      createRevision: prev !== undefined ? prev.createRevision : rev,
      modRevision: rev,
      version: prev !== undefined ? prev.version + 1 : 1,
      value: Buffer.from(value),
      lease,
    };
    s.index.put(ks, rev, sub, kv.createRevision, kv.version);
    s.queue.putVisible(KEY_BUCKET, revToBytes(rev, sub), encodeKeyValue(kv));
    s.lessor.attach(ks, lease);
    this.events.push(prev !== undefined ? { type: 'PUT', kv, prevKv: prev } : { type: 'PUT', kv });
    const resp: PutResponse = { header: header(rev) };
    if (n.prevKv && prev !== undefined) resp.prevKv = prev;
    return resp;
  }

  deleteRange(n: NDelete): DeleteRangeResponse {
    const live = liveKeys(this.#s, n.key, n.rangeEnd);
    const prevKvs: KeyValue[] = [];
    for (const ks of live) {
      const prev = this.deleteKey(ks);
      if (n.prevKv) prevKvs.push(prev);
    }
    return { header: header(this.readRev), deleted: live.length, prevKvs };
  }

  /** Tombstone one live key; returns its last value. */
  deleteKey(ks: string): KeyValue {
    const s = this.#s;
    const prev = liveKv(s, this.reader, ks);
    if (prev === undefined) throw new Panic('deleting a key that is not live');
    const rev = this.beginRev + 1;
    const sub = this.events.length;
    s.index.tombstone(ks, rev, sub);
    const key = Buffer.from(byteStringToBytes(ks));
    s.queue.put(KEY_BUCKET, revToBytes(rev, sub, true), encodeTombstone(key));
    s.lessor.detach(ks);
    // A watcher's prevKv is the key as of the revision before this one (as etcd and our history
    // read give it), not a value written earlier in the same txn.
    const before = s.index.get(ks, this.beginRev);
    const ev: Event = {
      type: 'DELETE',
      kv: { key, createRevision: 0, modRevision: rev, version: 0, value: EMPTY, lease: 0n },
    };
    if (before !== undefined) ev.prevKv = readKv(s, this.reader, before.main, before.sub);
    this.events.push(ev);
    return prev;
  }

  /** Bump the revision and queue its announcement, if anything changed. */
  end(): void {
    if (this.events.length === 0) return;
    this.#s.currentRev = this.beginRev + 1;
    this.#s.queue.announce({ revision: this.#s.currentRev, events: this.events });
  }
}
