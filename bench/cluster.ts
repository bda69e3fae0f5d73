/**
 * A 3-member boltkv cluster and a 3-member etcd 3.4 cluster on loopback, same machine, same run,
 * like for like: both are three separate processes started with etcd's cluster flags
 * (`boltkv serve` and `etcd`), both are driven by the same client code over the same HTTP/JSON
 * gateway with keep-alive connections. Measured: put throughput and p50/p99 with 1 and BENCH_WIDE
 * requests in flight, linearizable and serializable range, the time until a write succeeds again
 * after kill -9 of the leader (a new leader elected), and the time for a new learner to catch up on
 * BENCH_LEARNER_KEYS keys (snapshot + log; loaded as txns of 128 puts, 32 in flight, like an etcd bulk load), timed from the accepted member add to the learner having
 * applied the leader's raft index. Ratios are boltkv / etcd (for ops/s higher is better, for ms lower).
 *
 *   node --import tsx --conditions=boltkv-source bench/cluster.ts
 *   BENCH_OPS=2000 BENCH_WIDE=1000 BENCH_LEARNER_KEYS=1000000 ... (defaults: 500 ops, 1000 wide, 20,000 keys)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EtcdGateway, etcdAvailable, freePort } from '../test/support/etcd.ts';
import { countingFileSystem, type IoCount } from '../test/support/counting-fs.ts';
import { eventually } from '../test/support/eventually.ts';
import { machineInfo, printTable, writeResults, type Row } from './lib/report.ts';
import { mark, ownMarks, tracing } from '../src/replication/trace.ts';
import { Member, type MemberInfo } from '../src/replication/index.ts';
import type { Message } from '../src/raft/index.ts';

const OPS = Number(process.env.BENCH_OPS ?? 500);
const WIDE = Number(process.env.BENCH_WIDE ?? 1000);
const LEARNER_KEYS = Number(process.env.BENCH_LEARNER_KEYS ?? 20_000);
/** Puts per load txn: the gateway's default --max-txn-ops, as etcd users bulk-load. */
const LOAD_TXN_OPS = 128;
/** Load txns in flight. */
const LOAD_IN_FLIGHT = 32;
const ROOT = join(import.meta.dirname, '..');
/** Extra node flags for the boltkv members, e.g. BENCH_SERVER_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof'. */
const SERVER_NODE_ARGS = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
/** BENCH_ONLY=boltkv skips etcd (profiling runs); BENCH_LEARNER_KEYS=0 and BENCH_FAILOVER=0 skip those rows. */
const ONLY = process.env.BENCH_ONLY;

interface Target {
  name: string;
  put(key: string, value: string, via?: number): Promise<unknown>;
  range(key: string, serializable: boolean, via?: number): Promise<unknown>;
  /** Kill the leader like kill -9; resolves with the time until a write succeeds again (ms). */
  failover(): Promise<number>;
  /** Add a learner and time until it has applied the leader's index (ms). */
  learnerCatchUp(): Promise<number>;
  /** The member processes' pids (for CPU and context-switch counts). */
  pids(): number[];
  close(): Promise<void>;
}

/**
 * Sends a request again once if a pooled keep-alive connection was reset: a member closes a
 * connection idle past its keep-alive timeout, and a request already on its way over it is never
 * read (HTTP clients retry that case). The same for both products.
 */
async function resent<T>(send: () => Promise<T>): Promise<T> {
  try {
    return await send();
  } catch (e) {
    if ((e as { code?: unknown }).code !== 'ECONNRESET') throw e;
    return send();
  }
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function measure(
  n: number,
  inFlight: number,
  op: (i: number) => Promise<unknown>,
): Promise<{ opsPerSec: number; p50: number; p99: number }> {
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(inFlight, n) }, async () => {
      while (next < n) {
        const i = next++;
        const s = performance.now();
        if (tracing) mark('client-send', i);
        await op(i);
        if (tracing) mark('client-recv', i);
        lat.push(performance.now() - s);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { opsPerSec: n / secs, p50: pct(lat, 50), p99: pct(lat, 99) };
}

/** CPU time (user + system, all threads) and context switches (all threads) of some processes, from /proc. */
interface Usage {
  cpuMs: number;
  switches: number;
  /** CPU time by thread: `main` (the event loop) or the thread's name (V8's helpers, libuv's pool). */
  byThread: Map<string, number>;
}

function usageOf(pids: number[]): Usage | undefined {
  if (process.platform !== 'linux') return undefined;
  let cpuMs = 0;
  let switches = 0;
  const byThread = new Map<string, number>();
  try {
    for (const pid of pids) {
      // fields after the parenthesised command: state is field 3, utime 14, stime 15 (clock ticks, 100/s on Linux)
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      cpuMs += (Number(f[11]) + Number(f[12])) * 10;
      for (const t of readdirSync(`/proc/${pid}/task`)) {
        const ts = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
        const tf = ts.slice(ts.lastIndexOf(')') + 2).split(' ');
        const name = t === String(pid) ? 'main' : ts.slice(ts.indexOf('(') + 1, ts.lastIndexOf(')')).trim();
        byThread.set(name, (byThread.get(name) ?? 0) + (Number(tf[11]) + Number(tf[12])) * 10);
        const st = readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8');
        for (const m of st.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)$/gm)) switches += Number(m[1]);
      }
    }
  } catch {
    return undefined; // a process exited meanwhile
  }
  return { cpuMs, switches, byThread };
}

/** CPU ms per op by thread kind between two samples, largest first (threads that exited are not counted). */
function threadShares(before: Usage, after: Usage, n: number): string {
  return [...after.byThread]
    .map(([name, ms]) => [name, (ms - (before.byThread.get(name) ?? 0)) / n] as const)
    .filter(([, ms]) => ms > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([name, ms]) => `${name} ${ms.toFixed(3)}`)
    .join(', ');
}

/** The tests' poller, polling every 5 ms; a learner on 1M keys gets longer than the default. */
const until = <T>(what: string, fn: () => Promise<T | undefined>, ms = 120_000): Promise<T> =>
  eventually(what, fn, ms, 5);

/** A raw gateway call: etcd's JSON as is (uint64 ids stay strings). */
async function raw(url: string, path: string, body: unknown): Promise<Record<string, unknown>> {
  const r = await fetch(`${url}${path}`, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
  });
  const j = (await r.json()) as Record<string, unknown>;
  if (r.status !== 200 || j.error !== undefined) throw new Error(String(j.error ?? j.message ?? r.status));
  return j;
}

interface Status {
  leader?: string;
  header: { member_id: string };
  raftIndex?: string;
  raftAppliedIndex?: string;
}

interface Spec {
  name: string;
  client: string;
  peer: string;
}

interface Proc extends Spec {
  child: ChildProcess;
  gw: EtcdGateway;
  exited: Promise<void>;
}

/** How one product's member process is started: the same etcd flags for both. */
interface Product {
  name: string;
  command: string;
  prefix: string[];
  /** --initial-cluster-state for a member restarted on its own data dir after kill -9. */
  restartState: 'new' | 'existing';
}

const products: Record<'boltkv' | 'etcd', Product> = {
  boltkv: {
    name: 'boltkv',
    command: process.execPath,
    prefix: [
      ...SERVER_NODE_ARGS,
      '--import',
      'tsx',
      '--conditions=boltkv-source',
      join(ROOT, 'src', 'cli', 'main.ts'),
      'serve',
    ],
    restartState: 'new',
  },
  etcd: { name: 'etcd', command: 'etcd', prefix: ['--logger', 'zap'], restartState: 'existing' },
};

/** Three member processes of `p` on loopback, driven through their HTTP/JSON gateways. */
async function processCluster(p: Product): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), `boltkv-bench-${p.name}-`));
  const specs: Spec[] = [];
  for (const name of ['m1', 'm2', 'm3'])
    specs.push({ name, client: `http://127.0.0.1:${await freePort()}`, peer: `http://127.0.0.1:${await freePort()}` });
  const procs = new Map<string, Proc>();
  const launch = (s: Spec, cluster: string, state: 'new' | 'existing'): Proc => {
    const child = spawn(
      p.command,
      [
        ...p.prefix,
        '--name',
        s.name,
        '--data-dir',
        join(dir, s.name),
        '--listen-client-urls',
        s.client,
        '--advertise-client-urls',
        s.client,
        '--listen-peer-urls',
        s.peer,
        '--initial-advertise-peer-urls',
        s.peer,
        '--initial-cluster',
        cluster,
        '--initial-cluster-state',
        state,
        '--initial-cluster-token',
        'bench',
        '--heartbeat-interval',
        '100',
        '--log-level',
        'error',
      ],
      { stdio: 'ignore', cwd: ROOT },
    );
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const proc = { ...s, child, gw: new EtcdGateway(s.client, { keepAlive: true, maxSockets: 256 }), exited };
    procs.set(s.name, proc);
    return proc;
  };
  const clusterStr = specs.map((s) => `${s.name}=${s.peer}`).join(',');
  for (const s of specs) launch(s, clusterStr, 'new');
  const status = async (x: Proc): Promise<Status> =>
    (await raw(x.client, '/v3/maintenance/status', {})) as unknown as Status;
  const leader = (): Promise<Proc> =>
    until(`a ${p.name} leader`, async () => {
      for (const x of procs.values()) {
        const s = await status(x).catch(() => undefined);
        if (s !== undefined && s.leader !== undefined && s.leader === s.header.member_id) return x;
      }
      return undefined;
    });
  const settled = (): Promise<true> =>
    until(`every ${p.name} member to know the leader`, async () => {
      for (const x of procs.values()) {
        const s = await status(x);
        if (s.leader === undefined || s.leader === '0') return undefined;
      }
      return true;
    });
  await leader();
  await settled();
  const pick = (via = 0): Proc => [...procs.values()][via % procs.size]!;
  return {
    name: p.name,
    put: (key, value, via) => resent(() => pick(via).gw.put({ key: Buffer.from(key), value: Buffer.from(value) })),
    range: (key, serializable, via) => resent(() => pick(via).gw.range({ key: Buffer.from(key), serializable })),
    async failover() {
      const l = await leader();
      const t0 = performance.now();
      l.child.kill('SIGKILL');
      l.gw.destroy();
      procs.delete(l.name);
      const others = [...procs.values()];
      await until(`a ${p.name} write after failover`, async () =>
        Promise.any(others.map((x) => x.gw.put({ key: Buffer.from('failover'), value: Buffer.from('1') }))),
      );
      const ms = performance.now() - t0;
      await l.exited;
      launch(specs.find((s) => s.name === l.name)!, clusterStr, p.restartState);
      await leader();
      await settled();
      return ms;
    },
    async learnerCatchUp() {
      const l = await leader();
      const value = 'v'.repeat(100);
      const txns = Math.ceil(LEARNER_KEYS / LOAD_TXN_OPS);
      let failed = 0;
      const load = await measure(txns, LOAD_IN_FLIGHT, (t) => {
        const success: { requestPut: { key: Buffer; value: Buffer } }[] = [];
        for (let i = t * LOAD_TXN_OPS; i < Math.min(LEARNER_KEYS, (t + 1) * LOAD_TXN_OPS); i++) {
          success.push({ requestPut: { key: Buffer.from(`load/${i}`), value: Buffer.from(value) } });
        }
        // a txn that fails (e.g. a leader change under load) is sent again, as a client would
        return until(`${p.name} load txn ${t}`, () =>
          l.gw.txn({ success }).catch((e: unknown) => {
            failed++;
            throw e;
          }),
        );
      });
      process.stderr.write(
        `${p.name}: loaded ${LEARNER_KEYS} keys in ${txns} txns of ${LOAD_TXN_OPS} at ${Math.round(load.opsPerSec * LOAD_TXN_OPS)} keys/s; ${failed} txn attempts failed and were retried\n`,
      );
      const s4 = {
        name: 'm4',
        client: `http://127.0.0.1:${await freePort()}`,
        peer: `http://127.0.0.1:${await freePort()}`,
      };
      // etcd refuses a member add until every member has been healthy for a while (strict reconfig)
      await until(`${p.name} member add`, () =>
        raw(l.client, '/v3/cluster/member/add', { peerURLs: [s4.peer], isLearner: true }),
      );
      const t0 = performance.now();
      const target = Number((await status(l)).raftIndex ?? 0);
      const p4 = launch(s4, `${clusterStr},${s4.name}=${s4.peer}`, 'existing');
      await until(
        `the ${p.name} learner`,
        async () => {
          const s = await status(p4);
          return Number(s.raftAppliedIndex ?? s.raftIndex ?? 0) >= target ? true : undefined;
        },
        600_000,
      );
      return performance.now() - t0;
    },
    pids: () => [...procs.values()].map((x) => x.child.pid ?? 0).filter((pid) => pid > 0),
    async close() {
      for (const x of procs.values()) {
        x.gw.destroy();
        x.child.kill('SIGTERM');
        await x.exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------- put timeline (BOLTKV_TRACE=<dir>)

interface Mark {
  t: number;
  pid: string;
  ev: string;
  detail: string;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

/**
 * Merges the client's and the members' marks (src/replication/trace.ts: one monotonic clock for
 * every process of the machine) and splits each put of the 1-in-flight row into where it waited:
 * client to the member's put(), the proposal reaching the leader's Ready, the leader's Ready until
 * the commit index covers the entry (its own bolt commit inside, in parallel with a follower's),
 * the apply and answer on the member the client called, and the way back to the client. Also counts
 * Readies, commits and peer writes per put on each member.
 */
function summarizeTrace(dir: string): void {
  const marks: Mark[] = [];
  const texts = readdirSync(dir)
    .filter((f) => /^trace-\d+\.tsv$/.test(f) && f !== `trace-${process.pid}.tsv`)
    .map((f) => readFileSync(join(dir, f), 'utf8'));
  texts.push(ownMarks().join('\n')); // this process writes its own file only when it exits
  for (const text of texts) {
    for (const line of text.split('\n')) {
      const [t, pid, ev, detail] = line.split('\t');
      if (t === undefined || pid === undefined || ev === undefined || t === '') continue;
      marks.push({ t: Number(BigInt(t)) / 1e6, pid, ev, detail: detail ?? '' });
    }
  }
  marks.sort((a, b) => a.t - b.t);
  const me = String(process.pid);
  const sends = marks.filter((m) => m.pid === me && m.ev === 'client-send');
  const recvs = marks.filter((m) => m.pid === me && m.ev === 'client-recv');
  // measure() marks every op: 50 warm-up puts, then the OPS puts of the 1-in-flight row
  const first = 50;
  const segs: Record<string, number[]> = {
    total: [],
    'client -> member put()': [],
    'put() -> leader Ready with the entry': [],
    'leader Ready -> commit index covers it': [],
    '  of which the leader bolt commit': [],
    'commit -> answered where called': [],
    'answered -> client has the response': [],
  };
  const counts = new Map<string, Map<string, number>>();
  const count = (pid: string, what: string): void => {
    const m = counts.get(pid) ?? new Map<string, number>();
    m.set(what, (m.get(what) ?? 0) + 1);
    counts.set(pid, m);
  };
  const lo = sends[first]?.t ?? 0;
  const hi = recvs[first + OPS - 1]?.t ?? 0;
  for (const m of marks) {
    if (m.pid === me || m.t < lo || m.t > hi) continue;
    if (m.ev === 'ready' || m.ev === 'commit-start' || m.ev === 'write') count(m.pid, m.ev);
  }
  let at = 0;
  for (let k = first; k < first + OPS && k < sends.length && k < recvs.length; k++) {
    const s = sends[k]!.t;
    const r = recvs[k]!.t;
    while (at < marks.length && marks[at]!.t < s) at++;
    const w: Mark[] = [];
    for (let i = at; i < marks.length && marks[i]!.t <= r; i++) w.push(marks[i]!);
    const put = w.find((m) => m.ev === 'put');
    const append = w.find((m) => m.ev === 'ready' && /e=\d/.test(m.detail) && /app>/.test(m.detail));
    if (put === undefined || append === undefined) continue;
    const idx = /e=(\d+)/.exec(append.detail)![1]!;
    const covers = new RegExp(`c=(?:[\\d,]*,)?${idx}(?:,|\\s|$)`);
    const commit = w.find((m) => m.pid === append.pid && m.ev === 'ready' && m.t > append.t && covers.test(m.detail));
    const done = w.find((m) => m.pid === put.pid && m.ev === 'put-done' && commit !== undefined && m.t > commit.t);
    const tx = w.find((m) => m.pid === append.pid && m.ev === 'bolt-tx' && m.t > append.t);
    const durable = w.find((m) => m.pid === append.pid && m.ev === 'bolt-durable' && tx !== undefined && m.t > tx.t);
    if (commit === undefined || done === undefined) continue;
    segs.total!.push(r - s);
    segs['client -> member put()']!.push(put.t - s);
    segs['put() -> leader Ready with the entry']!.push(append.t - put.t);
    segs['leader Ready -> commit index covers it']!.push(commit.t - append.t);
    if (tx !== undefined && durable !== undefined) segs['  of which the leader bolt commit']!.push(durable.t - tx.t);
    segs['commit -> answered where called']!.push(done.t - commit.t);
    segs['answered -> client has the response']!.push(r - done.t);
  }
  console.log(
    `\nput, 1 in flight: where a put waits (BOLTKV_TRACE=${dir}; medians over ${segs.total!.length} puts, ms)`,
  );
  for (const [k, v] of Object.entries(segs)) console.log(`  ${k.padEnd(42)} ${median(v).toFixed(3)}`);
  console.log('per put, each member:');
  for (const [pid, m] of counts)
    console.log(
      `  pid ${pid}: ${[...m].map(([what, n]) => `${what} ${(n / OPS).toFixed(2)}`).join(', ')} (ready = Readies, commit-start = awaited bolt commits, write = peer frames)`,
    );
}

// ---------------------------------------------------------------- run

interface Measured {
  opsPerSec?: number;
  p50?: number;
  p99?: number;
  ms?: number;
  /** The three members' CPU time per operation (user + system, ms), and their context switches per operation. */
  cpuMsPerOp?: number;
  switchesPerOp?: number;
}

async function run(t: Target): Promise<Record<string, Measured>> {
  const out: Record<string, Measured> = {};
  const note = (w: string): void => void process.stderr.write(`${t.name}: ${w}\n`);
  const v = 'x'.repeat(256);
  // Wall time on a shared machine is noisy; the members' CPU and context switches per operation are counted.
  const counted = async (n: number, inFlight: number, op: (i: number) => Promise<unknown>): Promise<Measured> => {
    const before = usageOf(t.pids());
    const m: Measured = await measure(n, inFlight, op);
    const after = usageOf(t.pids());
    if (before !== undefined && after !== undefined) {
      m.cpuMsPerOp = (after.cpuMs - before.cpuMs) / n;
      m.switchesPerOp = (after.switches - before.switches) / n;
      note(`members' CPU ms/op by thread: ${threadShares(before, after, n)}`);
    }
    return m;
  };
  await measure(50, 10, (i) => t.put(`warm/${i}`, v, i)); // warm up connections and JIT
  {
    // what the members cost doing nothing (ticks, heartbeats): per-op CPU at low rates includes it
    const before = usageOf(t.pids());
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 3000));
    const after = usageOf(t.pids());
    const s = (performance.now() - t0) / 1000;
    if (before !== undefined && after !== undefined)
      note(
        `idle: members' CPU ${((after.cpuMs - before.cpuMs) / s).toFixed(1)} ms/s (${threadShares(before, after, s)})`,
      );
  }
  note('put, 1 in flight');
  out['put, 1 in flight'] = await counted(OPS, 1, (i) => t.put(`k/${i}`, v, i));
  note(`put, ${WIDE} in flight`);
  out[`put, ${WIDE} in flight`] = await counted(OPS * 4, WIDE, (i) => t.put(`w/${i}`, v, i));
  note('range linearizable, 1 in flight');
  out['range linearizable, 1 in flight'] = await counted(OPS, 1, (i) => t.range(`k/${i % OPS}`, false, i));
  note('range serializable, 1 in flight');
  out['range serializable, 1 in flight'] = await counted(OPS, 1, (i) => t.range(`k/${i % OPS}`, true, i));
  note(`range linearizable, ${WIDE} in flight`);
  out[`range linearizable, ${WIDE} in flight`] = await counted(OPS * 4, WIDE, (i) => t.range(`k/${i % OPS}`, false, i));
  if (process.env.BENCH_FAILOVER !== '0') {
    note('leader election after kill -9');
    out['leader election after kill -9'] = { ms: await t.failover() };
  }
  if (LEARNER_KEYS > 0) {
    note(`learner catch-up, ${LEARNER_KEYS} keys`);
    out[`learner catch-up, ${LEARNER_KEYS} keys`] = { ms: await t.learnerCatchUp() };
  }
  return out;
}

/** This process's CPU time by thread: `main` (the event loop) and `other` (V8's helpers, libuv's pool). */
function ownThreads(): { main: number; other: number } {
  const out = { main: 0, other: 0 };
  for (const t of readdirSync('/proc/self/task')) {
    const ts = readFileSync(`/proc/self/task/${t}/stat`, 'utf8');
    const f = ts.slice(ts.lastIndexOf(')') + 2).split(' ');
    out[t === String(process.pid) ? 'main' : 'other'] += (Number(f[11]) + Number(f[12])) * 10;
  }
  return out;
}

/**
 * BENCH_IN_PROCESS=1: the same puts through three Members in this process, messages delivered by
 * setImmediate (no HTTP, no TCP, no other processes): what the replication core itself costs per
 * put, to set against the process cluster's figures. Counted, not timed: CPU by thread and each
 * member's fdatasyncs, write calls and bytes per put. TMPDIR picks the disk.
 */
async function inProcess(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-bench-inproc-'));
  const ids = [1, 2, 3];
  const initial: MemberInfo[] = ids.map((id) => ({
    id,
    name: `m${id}`,
    peerURLs: [`sim://m${id}`],
    clientURLs: [],
    isLearner: false,
  }));
  const io = new Map(ids.map((id) => [id, { syncs: 0, writes: 0, bytes: 0 }]));
  const members = new Map<number, Member>();
  const send = (msgs: Message[]): void => {
    for (const m of msgs) setImmediate(() => members.get(m.to)?.step(m));
  };
  const timers: NodeJS.Timeout[] = [];
  try {
    for (const id of ids) {
      const m = await Member.open({
        id,
        path: join(dir, `m${id}.db`),
        fileSystem: countingFileSystem(io.get(id)!),
        send,
        initialCluster: initial,
      });
      members.set(id, m);
      timers.push(setInterval(() => m.tick(), 100));
    }
    const all = [...members.values()];
    const leader = await until('a leader', async () => all.find((m) => m.memberStatus().leader === m.id), 30_000);
    const v = 'x'.repeat(256);
    const rows: Row[] = [];
    for (const [name, n, inFlight] of [
      ['warm-up', 200, 10],
      ['put, 1 in flight', OPS, 1],
      [`put, ${WIDE} in flight`, OPS * 4, WIDE],
    ] as const) {
      for (const c of io.values()) Object.assign(c, { syncs: 0, writes: 0, bytes: 0 });
      const t0 = ownThreads();
      const m = await measure(n, inFlight, (i) => leader.put({ key: `${name}/${i}`, value: v }));
      const t1 = ownThreads();
      if (name === 'warm-up') continue;
      const c = [...io.values()];
      const avg = (f: (x: IoCount) => number): number => c.reduce((a, x) => a + f(x), 0) / c.length / n;
      rows.push({
        workload: name,
        'ops/s': m.opsPerSec!,
        'p50 ms': m.p50!,
        'cpu ms/op (3 members)': (t1.main + t1.other - t0.main - t0.other) / n,
        'event loop': (t1.main - t0.main) / n,
        'other threads': (t1.other - t0.other) / n,
        'fdatasyncs/op/member': avg((x) => x.syncs),
        'writes/op/member': avg((x) => x.writes),
        'KB/op/member': avg((x) => x.bytes) / 1024,
      });
    }
    printTable('3 members in one process (messages by setImmediate; no HTTP, no TCP)', rows);
  } finally {
    for (const t of timers) clearInterval(t);
    for (const m of members.values()) await m.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (process.env.BENCH_IN_PROCESS === '1') return inProcess();
  const results: Record<string, Record<string, Measured>> = {};
  const b = await processCluster(products.boltkv);
  try {
    results.boltkv = await run(b);
  } finally {
    await b.close();
  }
  if (tracing) summarizeTrace(process.env.BOLTKV_TRACE!);
  if (ONLY === 'boltkv') {
    console.warn('BENCH_ONLY=boltkv: boltkv figures only');
  } else if (etcdAvailable()) {
    const e = await processCluster(products.etcd);
    try {
      results.etcd = await run(e);
    } finally {
      await e.close();
    }
  } else {
    console.warn('etcd not installed: boltkv figures only');
  }
  const rows: Row[] = Object.keys(results.boltkv!).map((w) => {
    const bk = results.boltkv![w]!;
    const et = results.etcd?.[w];
    const row: Row = { workload: w };
    if (bk.ms !== undefined) {
      row['boltkv ms'] = bk.ms;
      row['etcd ms'] = et?.ms ?? null;
      row['ratio'] = et?.ms !== undefined ? bk.ms / et.ms : null;
    } else {
      row['boltkv ops/s'] = bk.opsPerSec!;
      row['boltkv p50 ms'] = bk.p50!;
      row['boltkv p99 ms'] = bk.p99!;
      row['etcd ops/s'] = et?.opsPerSec ?? null;
      row['etcd p50 ms'] = et?.p50 ?? null;
      row['etcd p99 ms'] = et?.p99 ?? null;
      row['ratio'] = et?.opsPerSec !== undefined ? bk.opsPerSec! / et.opsPerSec : null;
      row['boltkv cpu ms/op'] = bk.cpuMsPerOp ?? null;
      row['etcd cpu ms/op'] = et?.cpuMsPerOp ?? null;
      row['boltkv csw/op'] = bk.switchesPerOp ?? null;
      row['etcd csw/op'] = et?.switchesPerOp ?? null;
    }
    return row;
  });
  printTable('3-member clusters on loopback (ratio: boltkv/etcd; ops/s higher is better, ms lower is better)', rows);
  console.log(
    `both: 3 member processes with etcd's flags (heartbeat 100 ms, election 1 s), one client over the HTTP/JSON gateway with keep-alive; boltkv runs from source under tsx; learner time includes the new process's start-up. ops=${OPS} wide=${WIDE} learner keys=${LEARNER_KEYS}`,
  );
  if (ONLY !== undefined) return; // a partial run does not replace the recorded table
  const file = writeResults('cluster', {
    machine: machineInfo(),
    ops: OPS,
    wide: WIDE,
    learnerKeys: LEARNER_KEYS,
    rows,
    results,
  });
  console.log(`wrote ${file}`);
}

await main();
