/**
 * A plain, slow model of etcd's KV semantics for property tests: the whole key→KeyValue map is
 * copied at every revision, and every request is answered from those snapshots. It shares no code
 * with the implementation. Keys and values are JS strings (tests use ASCII, so string order is
 * byte order). Leases are not modelled (lease fields stay 0).
 *
 * Each method returns { ok: response } or { err: code } with the implementation's error codes.
 */

export interface MKV {
  key: string;
  createRevision: number;
  modRevision: number;
  version: number;
  value: string;
  lease: bigint;
}

export interface MRange {
  key: string;
  rangeEnd?: string;
  limit?: number;
  revision?: number;
  sortOrder?: 'NONE' | 'ASCEND' | 'DESCEND';
  sortTarget?: 'KEY' | 'VERSION' | 'CREATE' | 'MOD' | 'VALUE';
  keysOnly?: boolean;
  countOnly?: boolean;
  minModRevision?: number;
  maxModRevision?: number;
  minCreateRevision?: number;
  maxCreateRevision?: number;
}
export interface MPut {
  key: string;
  value?: string;
  prevKv?: boolean;
  ignoreValue?: boolean;
}
export interface MDelete {
  key: string;
  rangeEnd?: string;
  prevKv?: boolean;
}
export interface MCompare {
  key: string;
  rangeEnd?: string;
  target: 'VALUE' | 'VERSION' | 'CREATE' | 'MOD';
  result: 'EQUAL' | 'NOT_EQUAL' | 'GREATER' | 'LESS';
  value?: string;
  version?: number;
  createRevision?: number;
  modRevision?: number;
}
export type MOp =
  | { requestRange: MRange }
  | { requestPut: MPut }
  | { requestDeleteRange: MDelete }
  | { requestTxn: MTxn };
export interface MTxn {
  compare: MCompare[];
  success: MOp[];
  failure: MOp[];
}

export type Result<T> = { ok: T } | { err: string };

type State = Map<string, MKV>;

const inRange = (k: string, key: string, end: string | undefined): boolean => {
  if (end === undefined || end === '') return k === key;
  if (end === '\0') return k >= key;
  return k >= key && k < end;
};

class ModelError extends Error {
  constructor(readonly code: string) {
    super(code);
  }
}

export class EtcdModel {
  rev = 1;
  compactRev = -1;
  private readonly snaps = new Map<number, State>([[1, new Map()]]);

  private state(rev: number): State {
    const s = this.snaps.get(rev);
    if (s === undefined) throw new Error(`model has no snapshot at ${rev}`);
    return s;
  }

  private wrap<T>(fn: () => T): Result<T> {
    try {
      return { ok: fn() };
    } catch (e) {
      if (e instanceof ModelError) return { err: e.code };
      throw e;
    }
  }

  range(req: MRange): Result<unknown> {
    return this.wrap(() => this.rangeAt(req, this.rev, this.state(this.rev)));
  }

  /** A range answered with header revision `cur`, where revision 0 means `curState`. */
  private rangeAt(req: MRange, cur: number, curState: State): unknown {
    if (req.key === '') throw new ModelError('ERR_EMPTY_KEY');
    let rev = req.revision ?? 0;
    if (rev > cur) throw new ModelError('ERR_FUTURE_REV');
    const st = rev <= 0 ? curState : undefined;
    if (rev <= 0) rev = cur;
    if (rev < this.compactRev) throw new ModelError('ERR_COMPACTED');
    const s = st ?? this.state(rev);
    let kvs = [...s.values()]
      .filter((kv) => inRange(kv.key, req.key, req.rangeEnd))
      .sort((a, b) => (a.key < b.key ? -1 : 1));
    const count = kvs.length;
    if (req.countOnly) kvs = [];
    if (req.maxModRevision) kvs = kvs.filter((kv) => kv.modRevision <= req.maxModRevision!);
    if (req.minModRevision) kvs = kvs.filter((kv) => kv.modRevision >= req.minModRevision!);
    if (req.maxCreateRevision) kvs = kvs.filter((kv) => kv.createRevision <= req.maxCreateRevision!);
    if (req.minCreateRevision) kvs = kvs.filter((kv) => kv.createRevision >= req.minCreateRevision!);
    const target = req.sortTarget ?? 'KEY';
    const filtered = !!(req.minModRevision || req.maxModRevision || req.minCreateRevision || req.maxCreateRevision);
    // etcd truncates to limit+1 (in key order) before sorting unless an order or a filter is given,
    // so a non-KEY target with order NONE sorts only that prefix (checked against etcd 3.4.23)
    if ((req.sortOrder ?? 'NONE') === 'NONE' && !filtered && (req.limit ?? 0) > 0) kvs = kvs.slice(0, req.limit! + 1);
    let order = req.sortOrder ?? 'NONE';
    if (order === 'NONE' && target !== 'KEY') order = 'ASCEND';
    if (order !== 'NONE') {
      const f = (kv: MKV): number | string =>
        target === 'KEY'
          ? kv.key
          : target === 'VALUE'
            ? kv.value
            : target === 'VERSION'
              ? kv.version
              : target === 'CREATE'
                ? kv.createRevision
                : kv.modRevision;
      const asc = (a: MKV, b: MKV): number => (f(a) < f(b) ? -1 : f(a) > f(b) ? 1 : 0);
      kvs = [...kvs].sort(order === 'ASCEND' ? asc : (a, b) => asc(b, a));
    }
    let more = false;
    const limit = req.limit ?? 0;
    if (limit > 0 && kvs.length > limit) {
      kvs = kvs.slice(0, limit);
      more = true;
    }
    if (req.keysOnly) kvs = kvs.map((kv) => ({ ...kv, value: '' }));
    return { header: { revision: cur }, kvs, more, count };
  }

  put(req: MPut): Result<unknown> {
    return this.wrap(() => {
      this.checkPut(req);
      const work = new Map(this.state(this.rev));
      const resp = this.putIn(work, req, this.rev);
      this.commit(work, true);
      return resp;
    });
  }

  private checkPut(req: MPut): void {
    if (req.key === '') throw new ModelError('ERR_EMPTY_KEY');
    if (req.ignoreValue && (req.value ?? '') !== '') throw new ModelError('ERR_VALUE_PROVIDED');
  }

  private putIn(work: State, req: MPut, begin: number): unknown {
    const prev = work.get(req.key);
    if (req.ignoreValue && prev === undefined) throw new ModelError('ERR_KEY_NOT_FOUND');
    const rev = begin + 1;
    work.set(req.key, {
      key: req.key,
      createRevision: prev ? prev.createRevision : rev,
      modRevision: rev,
      version: prev ? prev.version + 1 : 1,
      value: req.ignoreValue ? prev!.value : (req.value ?? ''),
      lease: 0n,
    });
    return req.prevKv && prev ? { header: { revision: rev }, prevKv: prev } : { header: { revision: rev } };
  }

  deleteRange(req: MDelete): Result<unknown> {
    return this.wrap(() => {
      if (req.key === '') throw new ModelError('ERR_EMPTY_KEY');
      const work = new Map(this.state(this.rev));
      const r = this.deleteIn(work, req, this.rev, false);
      this.commit(work, r.deleted > 0);
      return r.resp;
    });
  }

  private deleteIn(
    work: State,
    req: MDelete,
    begin: number,
    changedBefore: boolean,
  ): { resp: unknown; deleted: number } {
    const gone = [...work.values()]
      .filter((kv) => inRange(kv.key, req.key, req.rangeEnd))
      .sort((a, b) => (a.key < b.key ? -1 : 1));
    for (const kv of gone) work.delete(kv.key);
    const rev = gone.length > 0 || changedBefore ? begin + 1 : begin;
    return {
      resp: { header: { revision: rev }, deleted: gone.length, prevKvs: req.prevKv ? gone : [] },
      deleted: gone.length,
    };
  }

  private commit(work: State, changed: boolean): void {
    if (!changed) return;
    this.rev++;
    this.snaps.set(this.rev, work);
  }

  compact(rev: number): Result<unknown> {
    return this.wrap(() => {
      if (rev <= this.compactRev) throw new ModelError('ERR_COMPACTED');
      if (rev > this.rev) throw new ModelError('ERR_FUTURE_REV');
      this.compactRev = rev;
      return { header: { revision: this.rev } };
    });
  }

  /**
   * Whether the txn certainly breaks the "no key written twice" rule: two puts of one key in one
   * branch list, or a put inside a delete range of the same list. (etcd's exact rule also looks into
   * nested txns; tests accept ERR_DUPLICATE_KEY there without requiring it.)
   */
  static obviousDuplicate(t: MTxn): boolean {
    const bad = (ops: MOp[]): boolean => {
      const puts = ops.flatMap((o) => ('requestPut' in o ? [o.requestPut.key] : []));
      const dels = ops.flatMap((o) => ('requestDeleteRange' in o ? [o.requestDeleteRange] : []));
      if (new Set(puts).size !== puts.length) return true;
      // etcd checks a "\0" (from-key) delete as the literal interval [key, "\0"), which is empty
      return puts.some((k) => dels.some((d) => d.rangeEnd !== '\0' && inRange(k, d.key, d.rangeEnd)));
    };
    return bad(t.success) || bad(t.failure);
  }

  txn(t: MTxn): Result<unknown> {
    return this.wrap(() => {
      const begin = this.rev;
      const pre = this.state(begin);
      const decide = (x: MTxn): { ok: boolean; ops: MOp[] } => {
        const ok = x.compare.every((c) => this.compare(pre, c));
        return { ok, ops: ok ? x.success : x.failure };
      };
      // checks along the chosen path against the state before the txn: puts first, then ranges
      const walk = (x: MTxn, f: (op: MOp) => void): void => {
        for (const op of decide(x).ops) {
          if ('requestTxn' in op) walk(op.requestTxn, f);
          else f(op);
        }
      };
      walk(t, (op) => {
        if ('requestPut' in op && op.requestPut.ignoreValue && !pre.has(op.requestPut.key))
          throw new ModelError('ERR_KEY_NOT_FOUND');
      });
      walk(t, (op) => {
        if (!('requestRange' in op)) return;
        const r = op.requestRange.revision ?? 0;
        if (r === 0) return;
        if (r > begin) throw new ModelError('ERR_FUTURE_REV');
        if (r < this.compactRev) throw new ModelError('ERR_COMPACTED');
      });
      const work = new Map(pre);
      let changed = false;
      const exec = (x: MTxn): { header: { revision: number }; succeeded: boolean; responses: unknown[] } => {
        const d = decide(x);
        const responses = d.ops.map((op) => {
          if ('requestRange' in op)
            return { responseRange: this.rangeAt(op.requestRange, changed ? begin + 1 : begin, work) };
          if ('requestPut' in op) {
            changed = true;
            return { responsePut: this.putIn(work, op.requestPut, begin) };
          }
          if ('requestDeleteRange' in op) {
            const r = this.deleteIn(work, op.requestDeleteRange, begin, changed);
            if (r.deleted > 0) changed = true;
            return { responseDeleteRange: r.resp };
          }
          return { responseTxn: exec(op.requestTxn) };
        });
        return { header: { revision: 0 }, succeeded: d.ok, responses };
      };
      const resp = exec(t);
      resp.header = { revision: changed ? begin + 1 : begin };
      this.commit(work, changed);
      return resp;
    });
  }

  private compare(s: State, c: MCompare): boolean {
    const kvs = [...s.values()].filter((kv) => inRange(kv.key, c.key, c.rangeEnd));
    const test = (kv: MKV | undefined): boolean => {
      let a: number | string;
      let b: number | string;
      switch (c.target) {
        case 'VALUE':
          a = kv?.value ?? '';
          b = c.value ?? '';
          break;
        case 'VERSION':
          a = kv?.version ?? 0;
          b = c.version ?? 0;
          break;
        case 'CREATE':
          a = kv?.createRevision ?? 0;
          b = c.createRevision ?? 0;
          break;
        case 'MOD':
          a = kv?.modRevision ?? 0;
          b = c.modRevision ?? 0;
          break;
      }
      const r = a < b ? -1 : a > b ? 1 : 0;
      return c.result === 'EQUAL'
        ? r === 0
        : c.result === 'NOT_EQUAL'
          ? r !== 0
          : c.result === 'GREATER'
            ? r > 0
            : r < 0;
    };
    if (kvs.length === 0) return c.target === 'VALUE' ? false : test(undefined);
    return kvs.every(test);
  }
}
