/**
 * Txn execution as etcd's applier does it: decide every compare (nested txns included) against the
 * state before the txn, check the chosen path before changing anything (puts: key present for
 * ignore_*, lease exists; then ranges: revision not future or compacted), then run the ops in order
 * in one write transaction, so the whole txn takes one revision.
 */
import { applyCompare } from './compare.ts';
import { etcdError } from './errors.ts';
import { rangeOp } from './range.ts';
import type { ResponseOp, TxnResponse } from './requests.ts';
import { header, liveKeys, type StoreState, type WriteTxn } from './txn-context.ts';
import type { NOp, NTxn } from './validate.ts';
import type { BackendReader } from './backend.ts';
import { bytesToByteString as bstr, isFromKeyEnd } from '../keys.ts';
import { Panic } from '../errors.ts';

/** A txn with every compare already decided against the state before the txn. */
interface Decided {
  succeeded: boolean;
  ops: NOp[];
  nested: Map<number, Decided>;
}

export function runTxn(s: StoreState, w: WriteTxn, t: NTxn): TxnResponse {
  const d = decide(s, w.reader, t);
  checkPath(d, (op) => {
    if (op.t !== 'put') return;
    const p = op.r;
    if ((p.ignoreValue || p.ignoreLease) && s.index.current(bstr(p.key)) === undefined)
      throw etcdError('ERR_KEY_NOT_FOUND');
    if (p.lease !== 0n && !s.lessor.has(p.lease)) throw etcdError('ERR_LEASE_NOT_FOUND');
  });
  checkPath(d, (op) => {
    if (op.t !== 'range' || op.r.revision === 0) return;
    if (op.r.revision > s.currentRev) throw etcdError('ERR_FUTURE_REV');
    if (op.r.revision < s.compactMainRev) throw etcdError('ERR_COMPACTED');
  });
  checkIgnoredKeysSurvive(s, d);
  const resp = applyDecided(s, w, d);
  resp.header = header(w.readRev);
  return resp;
}

function decide(s: StoreState, r: BackendReader, t: NTxn): Decided {
  const succeeded = t.compare.every((c) => applyCompare(s, r, c));
  const ops = succeeded ? t.success : t.failure;
  const nested = new Map<number, Decided>();
  ops.forEach((op, i) => {
    if (op.t === 'txn') nested.set(i, decide(s, r, op.r));
  });
  return { succeeded, ops, nested };
}

function checkPath(d: Decided, f: (op: NOp) => void): void {
  d.ops.forEach((op, i) => {
    if (op.t === 'txn') checkPath(d.nested.get(i)!, f);
    else f(op);
  });
}

/**
 * A put with ignoreValue/ignoreLease needs its key live when it runs. The duplicate-key check
 * misses one way to break that inside a txn: a from-key ("\0") delete earlier in the txn (etcd
 * checks it as an empty interval, and then panics while applying). Replay the path's effect on key
 * liveness first so such a txn fails whole, with ERR_KEY_NOT_FOUND, before anything changes.
 */
function checkIgnoredKeysSurvive(s: StoreState, d: Decided): void {
  const overrides = new Map<string, boolean>();
  const live = (ks: string): boolean => overrides.get(ks) ?? s.index.current(ks) !== undefined;
  checkPath(d, (op) => {
    if (op.t === 'put') {
      const ks = bstr(op.r.key);
      if ((op.r.ignoreValue || op.r.ignoreLease) && !live(ks)) throw etcdError('ERR_KEY_NOT_FOUND');
      overrides.set(ks, true);
    } else if (op.t === 'delete') {
      const lo = bstr(op.r.key);
      if (op.r.rangeEnd.length === 0) {
        overrides.set(lo, false);
        return;
      }
      const end = op.r.rangeEnd;
      const hi = isFromKeyEnd(end) ? undefined : bstr(end);
      const hit = liveKeys(s, op.r.key, end);
      for (const ks of overrides.keys()) if (ks >= lo && (hi === undefined || ks < hi)) hit.push(ks);
      for (const ks of hit) overrides.set(ks, false);
    }
  });
}

function applyDecided(s: StoreState, w: WriteTxn, d: Decided): TxnResponse {
  const responses: ResponseOp[] = d.ops.map((op, i): ResponseOp => {
    switch (op.t) {
      case 'range':
        return { responseRange: rangeOp(s, w.reader, op.r, w.readRev) };
      case 'put':
        return { responsePut: w.put(op.r) };
      case 'delete':
        return { responseDeleteRange: w.deleteRange(op.r) };
      case 'txn':
        // etcd leaves a nested txn's header empty
        return { responseTxn: applyDecided(s, w, d.nested.get(i)!) };
      case 'empty':
        throw new Panic('empty op survived validation');
    }
  });
  return { header: { revision: 0 }, succeeded: d.succeeded, responses };
}
