/**
 * History reads for watch (etcd's watchable store catch-up): the events of a span of revisions for a
 * key range, read back from the `key` bucket in revision order, whole revisions at a time, with
 * prevKv taken from the key index at the revision before.
 */
import type { BackendReader } from './backend.ts';
import { KEY_BUCKET } from './buckets.ts';
import { decodeRecord } from './codec.ts';
import { bytesToRev, mainRevPrefix, revToBytes } from './revision.ts';
import { EMPTY, readKv, type StoreState } from './txn-context.ts';
import type { Event, RevisionBatch } from './types.ts';
import { bytesToByteString as bstr, isFromKeyEnd } from '../keys.ts';

export interface HistoryRequest {
  fromRev: number;
  /** Inclusive; already capped at the durable revision. */
  toRev: number;
  key: Uint8Array;
  rangeEnd?: Uint8Array;
  prevKv: boolean;
  limit?: number;
}

export function readHistory(s: StoreState, r: BackendReader, req: HistoryRequest): RevisionBatch[] {
  const from = Math.max(req.fromRev, 0);
  if (req.toRev < from) return [];
  const lo = bstr(req.key);
  const end = req.rangeEnd ?? EMPTY;
  const inRange =
    end.length === 0
      ? (k: string) => k === lo
      : isFromKeyEnd(end)
        ? (k: string) => k >= lo
        : (
            (hi: string) => (k: string) =>
              k >= lo && k < hi
          )(bstr(end));
  const limit = req.limit ?? Infinity;
  const out: RevisionBatch[] = [];
  let cur: RevisionBatch | undefined;
  r.scan(KEY_BUCKET, revToBytes(from, 0), mainRevPrefix(req.toRev + 1), (k, v) => {
    const rev = bytesToRev(k);
    if (cur !== undefined && cur.revision !== rev.main) {
      out.push(cur);
      cur = undefined;
      if (out.length >= limit) return false;
    }
    const rec = decodeRecord(v, k);
    const key = rec.tombstone ? rec.key : rec.kv.key;
    const ks = bstr(key);
    if (!inRange(ks)) return true;
    const ev: Event = rec.tombstone
      ? { type: 'DELETE', kv: { key, createRevision: 0, modRevision: rev.main, version: 0, value: EMPTY, lease: 0n } }
      : { type: 'PUT', kv: rec.kv };
    if (req.prevKv && !(ev.type === 'PUT' && ev.kv.version === 1)) {
      const prevRev = rev.main - 1;
      if (prevRev >= s.compactMainRev && prevRev > 0) {
        const p = s.index.get(ks, prevRev);
        if (p !== undefined) ev.prevKv = readKv(s, r, p.main, p.sub);
      }
    }
    if (cur === undefined) cur = { revision: rev.main, events: [] };
    cur.events.push(ev);
    return true;
  });
  if (cur !== undefined && out.length < limit) out.push(cur);
  return out;
}
