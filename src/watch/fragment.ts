/**
 * etcd's watch response fragmentation. A watch created with `fragment: true` has every response
 * whose encoded size reaches the server's limit split into pieces below it, in order, all but the
 * last flagged `fragment: true`; a piece always holds at least one event, so one event larger than
 * the limit still travels whole. Sizes are those of etcd's protobuf WatchResponse, so the split
 * points are the ones an etcd 3.4 server with the same `--max-request-bytes` picks.
 */
import { Buffer } from 'node:buffer';
import type { Event, KeyValue } from '../mvcc/types.ts';
import type { WatchResponse } from './types.ts';

/** etcd adds this to --max-request-bytes for gRPC framing; responses are split at the sum. */
export const GRPC_OVERHEAD_BYTES = 512 * 1024;

type Int64 = number | bigint | string;

function varintSize(v: Int64): number {
  let n = typeof v === 'bigint' ? v : BigInt(v);
  if (n < 0n) return 10; // int64 negatives are sign-extended to ten bytes
  if (n <= 0x7fn) return 1;
  let s = 0;
  while (n > 0n) {
    n >>= 7n;
    s++;
  }
  return s;
}

function smallVarintSize(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  return varintSize(n);
}

/** A proto3 int64 field: absent when zero. Every field tag here fits one byte. */
function int64Field(v: Int64 | undefined): number {
  if (v === undefined || v === 0 || v === 0n || v === '0' || v === '') return 0;
  return 1 + (typeof v === 'number' && v > 0 ? smallVarintSize(v) : varintSize(v));
}

function lenField(len: number): number {
  return 1 + smallVarintSize(len) + len;
}

function bytesField(len: number): number {
  return len === 0 ? 0 : lenField(len);
}

function keyValueSize(kv: KeyValue): number {
  return (
    bytesField(kv.key.length) +
    int64Field(kv.createRevision) +
    int64Field(kv.modRevision) +
    int64Field(kv.version) +
    bytesField(kv.value.length) +
    int64Field(kv.lease)
  );
}

/** Encoded size of one mvccpb.Event. */
export function eventSize(ev: Event): number {
  return (
    (ev.type === 'DELETE' ? 2 : 0) +
    lenField(keyValueSize(ev.kv)) +
    (ev.prevKv === undefined ? 0 : lenField(keyValueSize(ev.prevKv)))
  );
}

/**
 * Encoded size of a WatchResponse without its events. The header is counted as an etcd server
 * sends it: cluster and member ids at full width (random 64-bit ids take ten bytes) and a raft term.
 */
function baseSize(resp: WatchResponse): number {
  const header = 2 * (1 + 10) + int64Field(resp.header.revision) + 2;
  return (
    lenField(header) +
    int64Field(resp.watchId) +
    (resp.created === true ? 2 : 0) +
    (resp.canceled === true ? 2 : 0) +
    int64Field(resp.compactRevision) +
    (resp.cancelReason === undefined ? 0 : bytesField(Buffer.byteLength(resp.cancelReason))) +
    (resp.fragment === true ? 2 : 0)
  );
}

/** Encoded size of a whole WatchResponse, as etcd measures it. */
export function watchResponseSize(resp: WatchResponse): number {
  let size = baseSize(resp);
  for (const ev of resp.events) size += lenField(eventSize(ev));
  return size;
}

/**
 * Splits `resp` as etcd's sendFragments does for a limit of `maxBytes`: unchanged when it is
 * smaller or holds fewer than two events; otherwise pieces each as full as they can be while
 * staying below the limit.
 */
export function fragmentResponse(resp: WatchResponse, maxBytes: number): WatchResponse[] {
  const events = resp.events;
  if (events.length < 2) return [resp];
  const sizes = events.map((ev) => lenField(eventSize(ev)));
  let total = baseSize(resp);
  for (const s of sizes) total += s;
  if (total < maxBytes) return [resp];
  const pieces: WatchResponse[] = [];
  const base = baseSize({ ...resp, fragment: true });
  let i = 0;
  while (i < events.length) {
    const from = i;
    let size = base + sizes[i]!;
    i++;
    while (i < events.length && size + sizes[i]! < maxBytes) {
      size += sizes[i]!;
      i++;
    }
    const piece: WatchResponse = { ...resp, events: events.slice(from, i) };
    if (i < events.length) piece.fragment = true;
    pieces.push(piece);
  }
  return pieces;
}
