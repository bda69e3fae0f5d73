/**
 * Txn compare evaluation (etcd's applyCompare): a compare over a range holds only if it holds for
 * every key in it. A missing key compares as zero version/revisions/lease; it has no value, so a
 * VALUE compare on it is false whatever the result asked.
 */
import type { BackendReader } from './backend.ts';
import { EMPTY, rangeKeys, type StoreState } from './txn-context.ts';
import type { KeyValue } from './types.ts';
import type { NCompare } from './validate.ts';

function cmp(a: number | bigint, b: number | bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function applyCompare(s: StoreState, r: BackendReader, c: NCompare): boolean {
  const kvs = rangeKeys(s, r, c.key, c.rangeEnd, s.currentRev, 0, false).kvs;
  if (kvs.length === 0) {
    if (c.target === 'VALUE') return false;
    return compareKV(c, undefined);
  }
  return kvs.every((kv) => compareKV(c, kv));
}

function compareKV(c: NCompare, kv: KeyValue | undefined): boolean {
  let result: number;
  switch (c.target) {
    case 'VALUE':
      result = Buffer.compare(kv?.value ?? EMPTY, c.operand as Uint8Array);
      break;
    case 'VERSION':
      result = cmp(kv?.version ?? 0, c.operand as number);
      break;
    case 'CREATE':
      result = cmp(kv?.createRevision ?? 0, c.operand as number);
      break;
    case 'MOD':
      result = cmp(kv?.modRevision ?? 0, c.operand as number);
      break;
    case 'LEASE':
      result = cmp(kv?.lease ?? 0n, c.operand as bigint);
      break;
  }
  switch (c.result) {
    case 'EQUAL':
      return result === 0;
    case 'NOT_EQUAL':
      return result !== 0;
    case 'GREATER':
      return result > 0;
    case 'LESS':
      return result < 0;
  }
}
