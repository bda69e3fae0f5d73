/** etcdctl's key-value commands: get, put, del, txn and compaction. */
import type { RangeRequest, ResponseOp, SortOrder, SortTarget } from '../api/index.ts';
import { bool, num, str } from './args.ts';
import type { Command } from './command.ts';
import { usage } from './errors.ts';
import { kvLines } from './etcd-print.ts';
import { parseLease, parseTxn, rangeEnd } from './etcd-syntax.ts';
import { ETCD_GLOBAL_FLAGS, out, withKV } from './etcd-target.ts';
import { type CliIO, writeOutOf } from './output.ts';

const SORT_TARGETS: Record<string, SortTarget> = {
  CREATE: 'CREATE',
  KEY: 'KEY',
  MODIFY: 'MOD',
  VALUE: 'VALUE',
  VERSION: 'VERSION',
};

export const get: Command = {
  name: 'get',
  summary: 'gets the key or a range of keys (etcdctl)',
  usage: 'boltkv get --data-dir DIR [options] <key> [range_end]',
  flags: {
    ...ETCD_GLOBAL_FLAGS,
    prefix: { kind: 'bool', help: 'get keys with matching prefix' },
    'from-key': { kind: 'bool', help: 'get keys that are greater than or equal to the given key' },
    limit: { kind: 'int', default: 0, help: 'maximum number of results' },
    rev: { kind: 'int', default: 0, help: 'specify the kv revision' },
    'keys-only': { kind: 'bool', help: 'get only the keys' },
    'count-only': { kind: 'bool', help: 'get only the count' },
    'print-value-only': { kind: 'bool', help: 'only write values when using the "simple" output format' },
    'sort-by': { kind: 'string', default: '', help: 'sort target: CREATE, KEY, MODIFY, VALUE or VERSION' },
    order: { kind: 'string', default: '', help: 'order of results: ASCEND or DESCEND' },
    consistency: { kind: 'string', default: 'l', help: 'linearizable (l) or serializable (s): the same in process' },
  },
  async run(p, io) {
    const [key, end] = p.args;
    if (key === undefined || p.args.length > 2)
      throw usage('get command needs one argument as key and an optional argument as range_end');
    const req: RangeRequest = {
      key,
      rangeEnd: rangeEnd(key, end, bool(p.flags.prefix), bool(p.flags['from-key'])),
      limit: num(p.flags.limit),
      revision: num(p.flags.rev),
      keysOnly: bool(p.flags['keys-only']),
      countOnly: bool(p.flags['count-only']),
    };
    if (bool(p.flags['print-value-only']) && writeOutOf(p.flags['write-out']) !== 'simple') {
      throw usage('print-value-only is only for `--write-out=simple`');
    }
    const sortBy = str(p.flags['sort-by']).toUpperCase();
    const order = str(p.flags.order).toUpperCase();
    if (sortBy !== '' && !(sortBy in SORT_TARGETS)) throw usage(`bad sort target: ${sortBy}`);
    if (order !== '' && order !== 'ASCEND' && order !== 'DESCEND') throw usage(`bad sort order: ${order}`);
    if (sortBy !== '' || order !== '') {
      req.sortTarget = SORT_TARGETS[sortBy || 'KEY'];
      req.sortOrder = (order || 'ASCEND') as SortOrder;
    }
    await withKV(p, async (kv) => {
      const r = await kv.range(req);
      out(p, io, r, () =>
        req.countOnly ? [String(r.count)] : kvLines(r.kvs, bool(p.flags.hex), false, bool(p.flags['print-value-only'])),
      );
    });
  },
};

async function readStdin(io: CliIO): Promise<string> {
  if (!io.stdin) throw usage('no standard input');
  return io.stdin();
}

export const put: Command = {
  name: 'put',
  summary: 'puts the given key into the store (etcdctl)',
  usage: 'boltkv put --data-dir DIR [options] <key> <value> (value from standard input when omitted)',
  flags: {
    ...ETCD_GLOBAL_FLAGS,
    lease: { kind: 'string', default: '0', help: 'lease ID (in hexadecimal) to attach to the key' },
    'prev-kv': { kind: 'bool', help: 'return the previous key-value pair before modification' },
    'ignore-value': { kind: 'bool', help: 'update the key using its current value' },
    'ignore-lease': { kind: 'bool', help: 'update the key using its current lease' },
  },
  async run(p, io) {
    const [key, valueArg] = p.args;
    if (key === undefined || p.args.length > 2)
      throw usage('put command needs 1 argument and input from stdin or 2 arguments');
    const ignoreValue = bool(p.flags['ignore-value']);
    if (ignoreValue && valueArg !== undefined)
      throw usage('put command needs only 1 argument when --ignore-value is set');
    const value = ignoreValue ? undefined : (valueArg ?? (await readStdin(io)));
    const lease = parseLease(str(p.flags.lease));
    await withKV(p, async (kv) => {
      const r = await kv.put({
        key,
        value,
        lease,
        prevKv: bool(p.flags['prev-kv']),
        ignoreValue,
        ignoreLease: bool(p.flags['ignore-lease']),
      });
      out(p, io, r, () => ['OK', ...(r.prevKv ? kvLines([r.prevKv], bool(p.flags.hex)) : [])]);
    });
  },
};

export const del: Command = {
  name: 'del',
  summary: 'removes the specified key or range of keys (etcdctl)',
  usage: 'boltkv del --data-dir DIR [options] <key> [range_end]',
  flags: {
    ...ETCD_GLOBAL_FLAGS,
    prefix: { kind: 'bool', help: 'delete keys with matching prefix' },
    'from-key': { kind: 'bool', help: 'delete keys that are greater than or equal to the given key' },
    'prev-kv': { kind: 'bool', help: 'return deleted key-value pairs' },
  },
  async run(p, io) {
    const [key, end] = p.args;
    if (key === undefined || p.args.length > 2)
      throw usage('del command needs one argument as key and an optional argument as range_end');
    await withKV(p, async (kv) => {
      const r = await kv.deleteRange({
        key,
        rangeEnd: rangeEnd(key, end, bool(p.flags.prefix), bool(p.flags['from-key'])),
        prevKv: bool(p.flags['prev-kv']),
      });
      out(p, io, r, () => [String(r.deleted), ...kvLines(r.prevKvs ?? [], bool(p.flags.hex))]);
    });
  },
};

export const compaction: Command = {
  name: 'compaction',
  summary: 'compacts the event history (etcdctl)',
  usage: 'boltkv compaction --data-dir DIR [--physical] <revision>',
  flags: {
    ...ETCD_GLOBAL_FLAGS,
    physical: { kind: 'bool', help: 'wait for the compaction to physically remove all old revisions' },
  },
  async run(p, io) {
    const [revArg] = p.args;
    if (revArg === undefined || p.args.length !== 1 || !/^\d+$/.test(revArg))
      throw usage('compaction command needs 1 argument (a revision)');
    await withKV(p, async (kv) => {
      const r = await kv.compact({ revision: Number(revArg), physical: bool(p.flags.physical) });
      void r;
      // etcdctl prints this line whatever the output format.
      io.out(`compacted revision ${revArg}\n`);
    });
  },
};

function responseLines(r: ResponseOp, hex: boolean): string[] {
  if ('responsePut' in r) return ['OK', ...(r.responsePut.prevKv ? kvLines([r.responsePut.prevKv], hex) : [])];
  if ('responseRange' in r) return kvLines(r.responseRange.kvs, hex);
  if ('responseDeleteRange' in r)
    return [String(r.responseDeleteRange.deleted), ...kvLines(r.responseDeleteRange.prevKvs ?? [], hex)];
  return [];
}

export const txn: Command = {
  name: 'txn',
  summary: 'txn processes all the requests in one transaction, read from standard input (etcdctl)',
  usage: 'boltkv txn --data-dir DIR < requests (compares, blank line, success requests, blank line, failure requests)',
  flags: {
    ...ETCD_GLOBAL_FLAGS,
    interactive: { kind: 'bool', help: 'accepted for etcdctl parity: input is always read from standard input' },
  },
  async run(p, io) {
    const t = parseTxn(await readStdin(io));
    await withKV(p, async (kv) => {
      const r = await kv.txn(t);
      out(p, io, r, () => {
        const lines = [r.succeeded ? 'SUCCESS' : 'FAILURE'];
        for (const op of r.responses) lines.push('', ...responseLines(op, bool(p.flags.hex)));
        return lines;
      });
    });
  },
};
