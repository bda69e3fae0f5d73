/**
 * etcdctl's argument syntax, shared by its commands: key ranges (--prefix, --from-key), lease ids
 * in hex, and txn's interactive input (compares, blank line, success ops, blank line, failure ops).
 */
import type { Compare, CompareResult, CompareTarget, RequestOp } from '../api/index.ts';
import { prefixEndBytes } from '../keys.ts';
import { CliError, usage } from './errors.ts';

const enc = new TextEncoder();

export function rangeEnd(
  key: string,
  end: string | undefined,
  prefix: boolean,
  fromKey: boolean,
): Uint8Array | undefined {
  if (prefix && fromKey) throw usage('`--prefix` and `--from-key` cannot be set at the same time, choose one');
  if (prefix) return prefixEndBytes(enc.encode(key));
  if (fromKey) return new Uint8Array([0]);
  return end === undefined ? undefined : enc.encode(end);
}

export function parseLease(s: string): bigint {
  if (!/^[0-9a-fA-F]{1,16}$/.test(s)) throw usage(`bad lease ID (${s}), expecting ID in Hex`);
  return BigInt(`0x${s}`);
}

/** Split a line into words, honouring double quotes with Go-style escapes. */
function words(line: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (let m = re.exec(line); m; m = re.exec(line)) {
    out.push(m[1] !== undefined ? (JSON.parse(`"${m[1]}"`) as string) : m[2]!);
  }
  return out;
}

const CMP_TARGETS: Record<string, CompareTarget> = {
  ver: 'VERSION',
  version: 'VERSION',
  c: 'CREATE',
  create: 'CREATE',
  m: 'MOD',
  mod: 'MOD',
  val: 'VALUE',
  value: 'VALUE',
  lease: 'LEASE',
};
const CMP_OPS: Record<string, CompareResult> = {
  '=': 'EQUAL',
  '==': 'EQUAL',
  '>': 'GREATER',
  '<': 'LESS',
  '!=': 'NOT_EQUAL',
};

export function parseCompare(line: string): Compare {
  const m = /^\s*(\w+)\("((?:[^"\\]|\\.)*)"\)\s*(==|=|!=|<|>)\s*(.+?)\s*$/.exec(line);
  if (!m) throw new CliError('ERR_INVALID_INPUT', `malformed comparison: ${line}`);
  const target = CMP_TARGETS[m[1]!];
  if (!target)
    throw new CliError(
      'ERR_INVALID_INPUT',
      `malformed comparison: ${line}; got ${m[1]} but expected one of version, create, mod, value, lease`,
    );
  const key = JSON.parse(`"${m[2]}"`) as string;
  const operand = words(m[4]!)[0] ?? '';
  const c: Compare = { key, target, result: CMP_OPS[m[3]!]! };
  if (target === 'VALUE') c.value = operand;
  else {
    if (!/^-?\d+$/.test(operand) && target !== 'LEASE')
      throw new CliError('ERR_INVALID_INPUT', `malformed comparison: ${line}`);
    const n = target === 'LEASE' ? parseLease(operand) : Number(operand);
    if (target === 'VERSION') c.version = n as number;
    else if (target === 'CREATE') c.createRevision = n as number;
    else if (target === 'MOD') c.modRevision = n as number;
    else c.lease = n;
  }
  return c;
}

export function parseRequestOp(line: string): RequestOp {
  const [cmd, ...rest] = words(line);
  const flags = rest.filter((w) => w.startsWith('--'));
  const args = rest.filter((w) => !w.startsWith('--'));
  const has = (f: string): boolean => flags.includes(`--${f}`);
  switch (cmd) {
    case 'put':
      if (args.length !== 2) throw new CliError('ERR_INVALID_INPUT', `put command needs 2 arguments: ${line}`);
      return { requestPut: { key: args[0]!, value: args[1]!, prevKv: has('prev-kv') } };
    case 'get':
      if (args.length < 1 || args.length > 2)
        throw new CliError('ERR_INVALID_INPUT', `get command needs 1 or 2 arguments: ${line}`);
      return { requestRange: { key: args[0]!, rangeEnd: rangeEnd(args[0]!, args[1], has('prefix'), has('from-key')) } };
    case 'del':
    case 'delete':
      if (args.length < 1 || args.length > 2)
        throw new CliError('ERR_INVALID_INPUT', `del command needs 1 or 2 arguments: ${line}`);
      return {
        requestDeleteRange: {
          key: args[0]!,
          rangeEnd: rangeEnd(args[0]!, args[1], has('prefix'), has('from-key')),
          prevKv: has('prev-kv'),
        },
      };
    default:
      throw new CliError('ERR_INVALID_INPUT', `unknown request in txn: ${line}`);
  }
}

/** compares, blank line, success requests, blank line, failure requests — as etcdctl reads them. */
export function parseTxn(input: string): { compare: Compare[]; success: RequestOp[]; failure: RequestOp[] } {
  const lines = input.split('\n').map((l) => l.replace(/\r$/, ''));
  const sections: string[][] = [[], [], []];
  let s = 0;
  for (const l of lines) {
    if (l.trim() === '') {
      if (s < 2) s++;
      continue;
    }
    sections[s]!.push(l);
  }
  return {
    compare: sections[0]!.map(parseCompare),
    success: sections[1]!.map(parseRequestOp),
    failure: sections[2]!.map(parseRequestOp),
  };
}
