/**
 * etcd's Range as its applier runs it: fetch the live keys at the revision, then filter by
 * mod/create revision, sort, truncate to the limit (setting `more`), strip values for keysOnly.
 * `count` is the number of keys in the range, before the limit and the filters.
 */
import type { BackendReader } from './backend.ts';
import { etcdError } from './errors.ts';
import type { RangeResponse } from './requests.ts';
import { EMPTY, header, rangeKeys, type StoreState } from './txn-context.ts';
import type { KeyValue } from './types.ts';
import type { NRange } from './validate.ts';

function cmpNum(a: number, b: number): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Run a range at `curRev` (the header revision: the current one, or a txn's own). */
export function rangeOp(s: StoreState, r: BackendReader, n: NRange, curRev: number): RangeResponse {
  let rev = n.revision;
  if (rev > curRev) throw etcdError('ERR_FUTURE_REV');
  if (rev <= 0) rev = curRev;
  if (rev < s.compactMainRev) throw etcdError('ERR_COMPACTED');
  const needAll =
    n.sortOrder !== 'NONE' ||
    n.minModRevision !== 0 ||
    n.maxModRevision !== 0 ||
    n.minCreateRevision !== 0 ||
    n.maxCreateRevision !== 0;
  const fetch = needAll || n.limit <= 0 ? 0 : n.limit + 1;
  const res = rangeKeys(s, r, n.key, n.rangeEnd, rev, fetch, n.countOnly);
  let kvs = res.kvs;
  if (n.maxModRevision !== 0) kvs = kvs.filter((kv) => kv.modRevision <= n.maxModRevision);
  if (n.minModRevision !== 0) kvs = kvs.filter((kv) => kv.modRevision >= n.minModRevision);
  if (n.maxCreateRevision !== 0) kvs = kvs.filter((kv) => kv.createRevision <= n.maxCreateRevision);
  if (n.minCreateRevision !== 0) kvs = kvs.filter((kv) => kv.createRevision >= n.minCreateRevision);
  let order = n.sortOrder;
  if (n.sortTarget !== 'KEY' && order === 'NONE') order = 'ASCEND';
  if (order !== 'NONE') {
    const cmp = (a: KeyValue, b: KeyValue): number => {
      switch (n.sortTarget) {
        case 'KEY':
          return Buffer.compare(a.key, b.key);
        case 'VERSION':
          return cmpNum(a.version, b.version);
        case 'CREATE':
          return cmpNum(a.createRevision, b.createRevision);
        case 'MOD':
          return cmpNum(a.modRevision, b.modRevision);
        case 'VALUE':
          return Buffer.compare(a.value, b.value);
      }
    };
    kvs.sort(order === 'ASCEND' ? cmp : (a, b) => cmp(b, a));
  }
  let more = false;
  if (n.limit > 0 && kvs.length > n.limit) {
    kvs = kvs.slice(0, n.limit);
    more = true;
  }
  if (n.keysOnly) kvs = kvs.map((kv) => ({ ...kv, value: EMPTY }));
  return { header: header(curRev), kvs, more, count: res.count };
}
