/**
 * A 3-member boltkv cluster and a 3-member etcd 3.4 cluster on loopback, same machine, same run:
 * put latency/throughput with 1 and many requests in flight, linearizable and serializable range,
 * the time to elect a new leader after the leader is killed, and the time for a new learner to
 * catch up on N keys (snapshot + log), timed from the accepted member add to the learner having applied
 * the leader's index. Ratios are boltkv / etcd (< 1 means boltkv is faster for
 * times, the opposite for throughput).
 *
 * Caveat printed with the table: the boltkv members run in this process and are called in process,
 * while etcd's are separate processes reached over its HTTP/JSON gateway; the peer traffic of both
 * goes over loopback TCP.
 *
 *   node --import tsx --conditions=boltkv-source bench/cluster.ts
 *   BENCH_OPS=2000 BENCH_LEARNER_KEYS=1000000 ... (defaults: 500 ops, 20,000 keys)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReplicatedNode, type ClusterMemberSpec } from '../src/replication/index.ts';
import { EtcdGateway, etcdAvailable, freePort } from '../test/support/etcd.ts';
import { machineInfo, printTable, writeResults, type Row } from './lib/report.ts';

const OPS = Number(process.env.BENCH_OPS ?? 500);
const WIDE = Number(process.env.BENCH_WIDE ?? 1000);
const LEARNER_KEYS = Number(process.env.BENCH_LEARNER_KEYS ?? 20_000);

interface Target {
  name: string;
  put(key: string, value: string, via?: number): Promise<unknown>;
  range(key: string, serializable: boolean, via?: number): Promise<unknown>;
  /** Kill the leader like kill -9; resolves with the time until a write succeeds again (ms). */
  failover(): Promise<number>;
  /** Add a learner and time until it has applied the leader's index (ms). */
  learnerCatchUp(): Promise<number>;
  close(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function measure(n: number, inFlight: number, op: (i: number) => Promise<unknown>): Promise<{ opsPerSec: number; p50: number; p99: number }> {
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Math.min(inFlight, n) }, async () => {
    while (next < n) {
      const i = next++;
      const s = performance.now();
      await op(i);
      lat.push(performance.now() - s);
    }
  }));
  const secs = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { opsPerSec: n / secs, p50: pct(lat, 50), p99: pct(lat, 99) };
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 120_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch {
      // not yet
    }
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(5);
  }
}

// ---------------------------------------------------------------- boltkv

async function boltkvCluster(): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-bench-cluster-'));
  const spec: ClusterMemberSpec[] = [];
  for (const name of ['n1', 'n2', 'n3']) spec.push({ name, peerURLs: [`http://127.0.0.1:${await freePort()}`] });
  const nodes = new Map<string, ReplicatedNode>();
  const start = (name: string, cluster: ClusterMemberSpec[], state: 'new' | 'existing'): Promise<ReplicatedNode> => ReplicatedNode.start({
    name, dataDir: join(dir, name), listenPeerURL: cluster.find((s) => s.name === name)!.peerURLs[0]!, initialCluster: cluster,
    initialClusterState: state, tickMs: 100, electionTick: 10, catchUpEntries: 5000, snapshotCount: 10_000,
  });
  for (const s of spec) nodes.set(s.name, await start(s.name, spec, 'new'));
  const leader = async (): Promise<ReplicatedNode> => until('a boltkv leader', async () => [...nodes.values()].find((n) => n.member.memberStatus().leader === n.member.id));
  await leader();
  await until('every member to know the leader', async () => ([...nodes.values()].every((n) => n.member.memberStatus().leader !== 0) ? true : undefined));
  const pick = (via = 0): ReplicatedNode => [...nodes.values()][via % nodes.size]!;
  return {
    name: 'boltkv',
    put: (key, value, via) => pick(via).member.put({ key, value }),
    range: (key, serializable, via) => pick(via).member.range({ key, serializable }),
    async failover() {
      const l = await leader();
      const name = [...nodes].find(([, n]) => n === l)![0];
      const t0 = performance.now();
      await l.crash();
      nodes.delete(name);
      await until('a write after failover', async () => {
        const n = [...nodes.values()].find((x) => x.member.memberStatus().leader === x.member.id);
        return n === undefined ? undefined : n.member.put({ key: 'failover', value: '1' });
      });
      const ms = performance.now() - t0;
      nodes.set(name, await start(name, spec, 'new'));
      await until('every member to know the leader', async () => ([...nodes.values()].every((n) => n.member.memberStatus().leader !== 0) ? true : undefined));
      return ms;
    },
    async learnerCatchUp() {
      const l = await leader();
      const value = 'v'.repeat(100);
      await measure(LEARNER_KEYS, 1000, (i) => l.member.put({ key: `load/${i}`, value }));
      const url = `http://127.0.0.1:${await freePort()}`;
      const cluster = [...spec, { name: 'n4', peerURLs: [url] }];
      await l.member.memberAdd({ peerURLs: [url], isLearner: true, name: 'n4' });
      const t0 = performance.now();
      const target = l.member.memberStatus().raftIndex;
      const n4 = await start('n4', cluster, 'existing');
      nodes.set('n4', n4);
      await until('the boltkv learner', async () => (n4.member.memberStatus().raftAppliedIndex >= target ? true : undefined), 600_000);
      return performance.now() - t0;
    },
    async close() {
      for (const n of nodes.values()) await n.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------- etcd

/** A raw gateway call: etcd's JSON as is (uint64 ids stay strings). */
async function raw(url: string, path: string, body: unknown): Promise<Record<string, unknown>> {
  const r = await fetch(`${url}${path}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  const j = (await r.json()) as Record<string, unknown>;
  if (r.status !== 200 || j.error !== undefined) throw new Error(String(j.error ?? j.message ?? r.status));
  return j;
}

interface EtcdStatus { leader?: string; header: { member_id: string }; raftIndex?: string; raftAppliedIndex?: string }

interface EtcdProc { name: string; client: string; peer: string; dir: string; child: ChildProcess; gw: EtcdGateway; exited: Promise<void> }

async function etcdCluster(): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-bench-etcd-'));
  const specs: { name: string; client: string; peer: string }[] = [];
  for (const name of ['e1', 'e2', 'e3']) specs.push({ name, client: `http://127.0.0.1:${await freePort()}`, peer: `http://127.0.0.1:${await freePort()}` });
  const procs = new Map<string, EtcdProc>();
  const launch = (s: { name: string; client: string; peer: string }, cluster: string, state: 'new' | 'existing'): EtcdProc => {
    const d = join(dir, s.name);
    const child = spawn('etcd', [
      '--name', s.name, '--data-dir', d, '--listen-client-urls', s.client, '--advertise-client-urls', s.client,
      '--listen-peer-urls', s.peer, '--initial-advertise-peer-urls', s.peer, '--initial-cluster', cluster,
      '--initial-cluster-state', state, '--initial-cluster-token', 'bench', '--logger', 'zap', '--log-level', 'error',
    ], { stdio: 'ignore' });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const p = { ...s, dir: d, child, gw: new EtcdGateway(s.client, { keepAlive: true, maxSockets: 256 }), exited };
    procs.set(s.name, p);
    return p;
  };
  const clusterStr = specs.map((s) => `${s.name}=${s.peer}`).join(',');
  for (const s of specs) launch(s, clusterStr, 'new');
  const status = async (p: EtcdProc): Promise<EtcdStatus> => (await raw(p.client, '/v3/maintenance/status', {})) as unknown as EtcdStatus;
  const leader = (): Promise<EtcdProc> => until('an etcd leader', async () => {
    for (const p of procs.values()) {
      const s = await status(p).catch(() => undefined);
      if (s !== undefined && s.leader !== undefined && s.leader === s.header.member_id) return p;
    }
    return undefined;
  });
  await leader();
  const pick = (via = 0): EtcdProc => [...procs.values()][via % procs.size]!;
  return {
    name: 'etcd',
    put: (key, value, via) => pick(via).gw.put({ key: Buffer.from(key), value: Buffer.from(value) }),
    range: (key, serializable, via) => pick(via).gw.range({ key: Buffer.from(key), serializable }),
    async failover() {
      const l = await leader();
      const t0 = performance.now();
      l.child.kill('SIGKILL');
      l.gw.destroy();
      procs.delete(l.name);
      const others = [...procs.values()];
      await until('an etcd write after failover', async () => Promise.any(others.map((p) => p.gw.put({ key: Buffer.from('failover'), value: Buffer.from('1') }))));
      const ms = performance.now() - t0;
      await l.exited;
      launch(specs.find((s) => s.name === l.name)!, clusterStr, 'existing');
      await leader();
      return ms;
    },
    async learnerCatchUp() {
      const l = await leader();
      const value = 'v'.repeat(100);
      await measure(LEARNER_KEYS, 1000, (i) => l.gw.put({ key: Buffer.from(`load/${i}`), value: Buffer.from(value) }));
      const s4 = { name: 'e4', client: `http://127.0.0.1:${await freePort()}`, peer: `http://127.0.0.1:${await freePort()}` };
      // etcd refuses a member add until every member has been healthy for a while (strict reconfig)
      await until('etcd to accept member add', async () => (await status(l).catch(() => undefined)) !== undefined ? true : undefined);
      await until('etcd member add', () => raw(l.client, '/v3/cluster/member/add', { peerURLs: [s4.peer], isLearner: true }));
      const t0 = performance.now();
      const target = Number((await status(l)).raftIndex ?? 0);
      const p4 = launch(s4, `${clusterStr},${s4.name}=${s4.peer}`, 'existing');
      await until('the etcd learner', async () => {
        const s = await status(p4);
        return Number(s.raftAppliedIndex ?? s.raftIndex ?? 0) >= target ? true : undefined;
      }, 600_000);
      return performance.now() - t0;
    },
    async close() {
      for (const p of procs.values()) {
        p.gw.destroy();
        p.child.kill('SIGTERM');
        await p.exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------- run

async function run(t: Target): Promise<Record<string, { opsPerSec?: number; p50?: number; p99?: number; ms?: number }>> {
  const out: Record<string, { opsPerSec?: number; p50?: number; p99?: number; ms?: number }> = {};
  const note = (w: string): void => void process.stderr.write(`${t.name}: ${w}\n`);
  const v = 'x'.repeat(256);
  await measure(50, 10, (i) => t.put(`warm/${i}`, v, i)); // warm up connections and JIT
  note('put, 1 in flight');
  out['put, 1 in flight'] = await measure(OPS, 1, (i) => t.put(`k/${i}`, v, i));
  note(`put, ${WIDE} in flight`);
  out[`put, ${WIDE} in flight`] = await measure(OPS * 4, WIDE, (i) => t.put(`w/${i}`, v, i));
  note('range linearizable, 1 in flight');
  out['range linearizable, 1 in flight'] = await measure(OPS, 1, (i) => t.range(`k/${i % OPS}`, false, i));
  note('range serializable, 1 in flight');
  out['range serializable, 1 in flight'] = await measure(OPS, 1, (i) => t.range(`k/${i % OPS}`, true, i));
  note(`range linearizable, ${WIDE} in flight`);
  out[`range linearizable, ${WIDE} in flight`] = await measure(OPS * 4, WIDE, (i) => t.range(`k/${i % OPS}`, false, i));
  note('leader election after kill -9');
  out['leader election after kill -9'] = { ms: await t.failover() };
  note(`learner catch-up, ${LEARNER_KEYS} keys`);
  out[`learner catch-up, ${LEARNER_KEYS} keys`] = { ms: await t.learnerCatchUp() };
  return out;
}

async function main(): Promise<void> {
  const results: Record<string, Awaited<ReturnType<typeof run>>> = {};
  const b = await boltkvCluster();
  try {
    results.boltkv = await run(b);
  } finally {
    await b.close();
  }
  if (etcdAvailable()) {
    const e = await etcdCluster();
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
    }
    return row;
  });
  printTable('3-member clusters on loopback (ratio: boltkv/etcd; ops/s higher is better, ms lower is better)', rows);
  console.log('boltkv members run in this process and are called in process; etcd is 3 processes behind its HTTP/JSON gateway.');
  const file = writeResults('cluster', { machine: machineInfo(), ops: OPS, wide: WIDE, learnerKeys: LEARNER_KEYS, rows, results });
  console.log(`wrote ${file}`);
}

// member tick timers are unref'd: hold the process open while the run awaits them
const hold = setInterval(() => undefined, 1000);
try {
  await main();
} finally {
  clearInterval(hold);
}
