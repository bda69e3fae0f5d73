/**
 * Test support: start and stop a real etcd (3.4) on free loopback ports with a throw-away data dir,
 * and talk to it through its JSON gateway. The gateway speaks protobuf-JSON: snake_case fields,
 * bytes as base64, int64 as strings, default values omitted. `EtcdGateway` converts both ways so
 * tests can send boltkv-shaped requests (camelCase, Uint8Array, number) and get boltkv-shaped
 * responses back (defaults are still omitted: compare through `canonical()`).
 *
 * Caveat: int64 values become JS numbers. etcd-generated lease IDs exceed 2^53 and lose precision,
 * so tests that use leases pass their own small IDs.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { Agent, request } from 'node:http';
import type { TestContext } from 'node:test';

/** True when an `etcd` binary can be run. */
export function etcdAvailable(): boolean {
  const r = spawnSync('etcd', ['--version'], { encoding: 'utf8' });
  return r.status === 0;
}

/**
 * Skip the test loudly when etcd is missing, or fail when BOLTKV_REQUIRE_INTEROP=1 (CI).
 * Returns true when the caller should go on.
 */
export function requireEtcd(t: TestContext): boolean {
  if (etcdAvailable()) return true;
  if (process.env.BOLTKV_REQUIRE_INTEROP === '1') {
    throw new Error('etcd is required (BOLTKV_REQUIRE_INTEROP=1) but `etcd` could not be run');
  }
  console.warn(`\n*** SKIPPING "${t.name}": etcd is not installed (apt-get install etcd-server) ***\n`);
  t.skip('etcd not installed');
  return false;
}

/**
 * A free TCP port on 127.0.0.1 for a process to bind later. Drawn at random below the kernel's
 * ephemeral range (32768 and up on Linux), so a listener on port 0 started in between (another
 * member's client URL, another test file's server) cannot be handed the same port; a port given out
 * once is not given out again by this process. Still racy across processes, by a 1-in-10,000 chance.
 */
const handedOut = new Set<number>();
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    if (handedOut.has(port)) continue;
    if (await canListen(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no free port found in 20000..31999 after 50 attempts');
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

export interface EtcdServer {
  /** Client URL, e.g. http://127.0.0.1:23790 */
  url: string;
  dataDir: string;
  gateway: EtcdGateway;
  stop(): Promise<void>;
}

/**
 * Start a single-member etcd on loopback. Resolves once it answers a range request.
 * With `dataDir` the caller owns the directory (it is kept on stop, e.g. to time a restart).
 */
export async function startEtcd(
  opts: { extraArgs?: string[]; timeoutMs?: number; dataDir?: string; keepAlive?: boolean } = {},
): Promise<EtcdServer> {
  const clientPort = await freePort();
  let peerPort = await freePort();
  while (peerPort === clientPort) peerPort = await freePort();
  const ownDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'boltkv-etcd-'));
  const url = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const args = [
    '--name',
    'boltkv-test',
    '--data-dir',
    dataDir,
    '--listen-client-urls',
    url,
    '--advertise-client-urls',
    url,
    '--listen-peer-urls',
    peer,
    '--initial-advertise-peer-urls',
    peer,
    '--initial-cluster',
    `boltkv-test=${peer}`,
    '--initial-cluster-state',
    'new',
    '--logger',
    'zap',
    '--log-level',
    'error',
    ...(opts.extraArgs ?? []),
  ];
  const child: ChildProcess = spawn('etcd', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (stderr.length > 20000) stderr = stderr.slice(-10000);
  });
  let exited = false;
  const exitPromise = new Promise<void>((resolve) =>
    child.on('exit', () => {
      exited = true;
      resolve();
    }),
  );
  const gateway = new EtcdGateway(url, { keepAlive: opts.keepAlive });
  const stop = async (): Promise<void> => {
    gateway.destroy();
    if (!exited) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => {
        if (!exited) child.kill('SIGKILL');
      }, 5000);
      await exitPromise;
      clearTimeout(timer);
    }
    if (ownDir) rmSync(dataDir, { recursive: true, force: true });
  };
  const deadline = Date.now() + (opts.timeoutMs ?? 20000);
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`etcd exited during startup: ${stderr}`);
    }
    try {
      await gateway.call('/v3/kv/range', { key: new Uint8Array([0]) });
      break;
    } catch {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`etcd did not come up within the timeout: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { url, dataDir, gateway, stop };
}

/** An error answer from the gateway: etcd's gRPC message and code. */
export class GatewayError extends Error {
  readonly grpcCode: number;
  constructor(message: string, grpcCode: number) {
    super(message);
    this.name = 'GatewayError';
    this.grpcCode = grpcCode;
  }
}

const INT64_FIELDS = new Set([
  'revision',
  'raft_term',
  'cluster_id',
  'member_id',
  'create_revision',
  'mod_revision',
  'version',
  'lease',
  'count',
  'deleted',
  'ID',
  'TTL',
  'grantedTTL',
  'compact_revision',
  'watch_id',
]);
const BYTES_FIELDS = new Set(['key', 'value', 'range_end', 'keys']);

function camelToSnake(k: string): string {
  if (k === k.toUpperCase() || k === 'grantedTTL') return k;
  return k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
function snakeToCamel(k: string): string {
  return k.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
}

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
/** What `fromWire` produces: JSON with bytes as Uint8Array. */
export type Wire = null | boolean | number | string | Uint8Array | Wire[] | { [k: string]: Wire };

/** boltkv-shaped value → gateway JSON (snake_case keys, base64 bytes). */
export function toWire(v: unknown): Json {
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  if (Array.isArray(v)) return v.map(toWire);
  if (v === undefined || v === null) return null;
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'object') {
    const out: { [k: string]: Json } = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (x === undefined) continue;
      out[camelToSnake(k)] = toWire(x);
    }
    return out;
  }
  if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') return v;
  throw new Error(`cannot encode ${typeof v}`);
}

/** Gateway JSON → boltkv-shaped value (camelCase keys, Uint8Array bytes, number int64). */
export function fromWire(v: Json, field = ''): Wire {
  if (Array.isArray(v)) return v.map((x) => fromWire(x, field));
  if (v !== null && typeof v === 'object') {
    const out: { [k: string]: Wire } = {};
    for (const [k, x] of Object.entries(v)) out[snakeToCamel(k)] = fromWire(x, k);
    return out;
  }
  if (typeof v === 'string' && BYTES_FIELDS.has(field)) return new Uint8Array(Buffer.from(v, 'base64'));
  if (typeof v === 'string' && INT64_FIELDS.has(field)) return Number(v);
  return v;
}

/**
 * Canonical form for comparing a boltkv response with an etcd one: default values and empty objects
 * dropped (as protobuf-JSON does), bytes as base64 strings, header cluster/member ids and raft term
 * removed.
 */
export function canonical(v: unknown): Json {
  const walk = (x: unknown, key: string): Json | undefined => {
    if (x === undefined || x === null || x === false || x === 0 || x === 0n || x === '') return undefined;
    // boltkv's int64 lease IDs are bigint; the gateway side reads int64 as number
    if (typeof x === 'bigint') return Number.isSafeInteger(Number(x)) ? Number(x) : String(x);
    if (x instanceof Uint8Array) return x.length === 0 ? undefined : Buffer.from(x).toString('base64');
    if (Array.isArray(x)) {
      if (x.length === 0) return undefined;
      return x.map((e) => walk(e, key) ?? null);
    }
    if (typeof x === 'object') {
      const out: { [k: string]: Json } = {};
      for (const k of Object.keys(x as object).sort()) {
        if (key === 'header' && (k === 'clusterId' || k === 'memberId' || k === 'raftTerm')) continue;
        const w = walk((x as Record<string, unknown>)[k], k);
        if (w !== undefined) out[k] = w;
      }
      // protobuf-JSON may leave out an empty sub-message (a nested txn's header): treat {} as absent
      return Object.keys(out).length === 0 ? undefined : out;
    }
    if (typeof x === 'number' || typeof x === 'string' || typeof x === 'boolean') return x;
    return String(x);
  };
  return walk(v, '') ?? {};
}

/** Minimal JSON-gateway client. */
export class EtcdGateway {
  readonly url: string;
  private readonly agent: Agent | false;
  /** keepAlive reuses connections (benchmarks); the default opens one per request. */
  constructor(url: string, opts: { keepAlive?: boolean; maxSockets?: number } = {}) {
    this.url = url;
    this.agent = opts.keepAlive === true ? new Agent({ keepAlive: true, maxSockets: opts.maxSockets ?? 64 }) : false;
  }

  /** Release pooled connections (only matters with keepAlive). */
  destroy(): void {
    if (this.agent !== false) this.agent.destroy();
  }

  /** POST a boltkv-shaped request; resolve with the boltkv-shaped answer or reject with GatewayError. */
  async call(path: string, body: unknown): Promise<Wire> {
    const payload = JSON.stringify(toWire(body ?? {}));
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(
        `${this.url}${path}`,
        { method: 'POST', headers: { 'content-type': 'application/json' }, agent: this.agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
    const parsed = JSON.parse(text) as { [k: string]: Json };
    if (status !== 200 || parsed.error !== undefined) {
      const msg = typeof parsed.error === 'string' ? parsed.error : String(parsed.message ?? text);
      throw new GatewayError(msg, Number(parsed.code ?? 0));
    }
    return fromWire(parsed);
  }

  range(req: unknown): Promise<Wire> {
    return this.call('/v3/kv/range', req);
  }
  put(req: unknown): Promise<Wire> {
    return this.call('/v3/kv/put', req);
  }
  deleteRange(req: unknown): Promise<Wire> {
    return this.call('/v3/kv/deleterange', req);
  }
  txn(req: unknown): Promise<Wire> {
    return this.call('/v3/kv/txn', req);
  }
  compact(req: unknown): Promise<Wire> {
    return this.call('/v3/kv/compaction', req);
  }
  leaseGrant(req: unknown): Promise<Wire> {
    return this.call('/v3/lease/grant', req);
  }
  leaseRevoke(req: unknown): Promise<Wire> {
    return this.call('/v3/lease/revoke', req);
  }
  leaseTimeToLive(req: unknown): Promise<Wire> {
    return this.call('/v3/lease/timetolive', req);
  }
  leaseLeases(): Promise<Wire> {
    return this.call('/v3/lease/leases', {});
  }

  /**
   * Open a watch stream (`/v3/watch`): sends `body` (e.g. `{ createRequest: {...} }`) and calls
   * onMessage with every decoded response object (the gateway wraps each in `result`). Returns a
   * function that closes the stream.
   */
  watch(body: unknown, onMessage: (msg: Wire) => void, onError?: (err: Error) => void): () => void {
    const req = request(
      `${this.url}/v3/watch`,
      { method: 'POST', headers: { 'content-type': 'application/json' }, agent: false },
      (res) => {
        let buf = '';
        res.on('data', (c: Buffer) => {
          buf += c.toString();
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (line === '') continue;
            const obj = JSON.parse(line) as { [k: string]: Json };
            onMessage(fromWire((obj.result ?? obj) as Json));
          }
        });
        res.on('error', (e) => onError?.(e));
      },
    );
    req.on('error', (e) => onError?.(e));
    req.write(JSON.stringify(toWire(body)));
    return () => req.destroy();
  }
}
