/**
 * Where an etcdctl-style command runs and how it answers: a store opened in this process
 * (`--data-dir`) or servers reached through connect() (`--endpoints`), etcdctl's global flags, and
 * `-w json` vs simple output.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { openStore, type KV, type Maintenance } from '../api/index.ts';
import { type Client, connect } from '../client/index.ts';
import { type FlagSpecs, type Parsed, str } from './args.ts';
import { usage } from './errors.ts';
import { etcdJson } from './etcd-json.ts';
import { type CliIO, writeOutOf } from './output.ts';

export const ETCD_GLOBAL_FLAGS: FlagSpecs = {
  'data-dir': {
    kind: 'string',
    help: 'etcd-style data directory opened in this process (database at DIR/member/snap/db)',
  },
  endpoints: { kind: 'string', help: 'comma-separated server URLs (etcd or boltkv serve)' },
  hex: { kind: 'bool', help: 'print keys and values as hex' },
  'command-timeout': {
    kind: 'string',
    default: '5s',
    help: 'timeout of each call to a server (--endpoints), as etcdctl: 5s, 500ms, 1m',
  },
};

export function dbPathOf(dataDir: string): string {
  return join(dataDir, 'member', 'snap', 'db');
}

/** Where a command runs: a store opened in process, or a server reached through connect(). */
export interface Target {
  kv: KV & Maintenance;
  /** Set with --endpoints: the cluster calls only a server has. */
  client: Client | undefined;
  endpoint: string;
}

/** --endpoints as URLs (etcdctl accepts host:port too), or undefined with --data-dir. */
export function endpointsOf(p: Parsed): string[] | undefined {
  const endpoints = str(p.flags.endpoints);
  const dir = str(p.flags['data-dir']);
  if (endpoints && dir) throw usage('--endpoints and --data-dir exclude each other');
  if (!endpoints) {
    if (!dir) throw usage('--data-dir or --endpoints is required');
    return undefined;
  }
  return endpoints
    .split(',')
    .filter((e) => e !== '')
    .map((e) => (/^[a-z]+:\/\//.test(e) ? e : `http://${e}`));
}

export async function withTarget<T>(p: Parsed, fn: (t: Target) => Promise<T>): Promise<T> {
  const list = endpointsOf(p);
  if (list) {
    const client = connect({ endpoints: list, timeoutMs: commandTimeout(p) });
    try {
      return await fn({ kv: client, client, endpoint: str(p.flags.endpoints).split(',')[0]! });
    } finally {
      await client.close();
    }
  }
  const dir = str(p.flags['data-dir']);
  mkdirSync(join(dir, 'member', 'snap'), { recursive: true });
  const kv = await openStore(dbPathOf(dir));
  try {
    return await fn({ kv, client: undefined, endpoint: dir });
  } finally {
    await kv.close();
  }
}

/**
 * etcdctl's per-member commands (endpoint status|hashkv, defrag) address every endpoint in turn,
 * each through a client of its own so the answer is that member's.
 */
export async function forEachEndpoint(
  p: Parsed,
  fn: (m: KV & Maintenance, endpoint: string) => Promise<void>,
): Promise<void> {
  const list = endpointsOf(p);
  if (!list) return withTarget(p, (t) => fn(t.kv, t.endpoint));
  const given = str(p.flags.endpoints)
    .split(',')
    .filter((e) => e !== '');
  for (const [i, url] of list.entries()) {
    const client = connect({ endpoints: [url], timeoutMs: commandTimeout(p) });
    try {
      await fn(client, given[i]!);
    } finally {
      await client.close();
    }
  }
}

export async function withKV<T>(p: Parsed, fn: (kv: KV, endpoint: string) => Promise<T>): Promise<T> {
  return withTarget(p, (t) => fn(t.kv, t.endpoint));
}

/** etcdctl's --command-timeout (Go duration: 5s, 500ms, 1m), default 5 s. */
export function commandTimeout(p: Parsed): number {
  const v = str(p.flags['command-timeout']);
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(v);
  if (!m) throw usage(`invalid --command-timeout: ${v}`);
  const ms = Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  if (!(ms > 0)) throw usage(`invalid --command-timeout: ${v}`);
  return ms;
}

export function out(p: Parsed, io: CliIO, response: unknown, simple: () => string[]): void {
  const w = writeOutOf(p.flags['write-out']);
  if (w === 'json') io.out(`${etcdJson(response)}\n`);
  else {
    const lines = simple();
    if (lines.length > 0) io.out(`${lines.join('\n')}\n`);
  }
}
