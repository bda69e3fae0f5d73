// Real processes: three members, each its own node process on loopback with its own file, killed
// with SIGKILL (kill -9) at random moments and restarted while clients write and read through any
// member, and one member cut off by a proxy in front of its peer port. A fourth member is added
// late as a learner (after the voters compacted their logs, so it must catch up by snapshot),
// promoted once in sync, and killed and restarted like the others. Afterwards the recorded history
// must be linearizable, no acknowledged write lost, every file must pass check(), and all members
// must hold the same data at the same applied index.
// BOLTKV_STRESS=1 runs it longer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { BoltBackend } from '../../src/mvcc/backend/bolt.ts';
import { hashKVOfBackend } from '../../src/mvcc/hash.ts';
import { freePort } from '../support/etcd.ts';
import { Rng } from '../support/rng.ts';
import { checkKv, type KvInput, type KvOutput, type Operation } from './lin/checker.ts';

const STRESS = process.env.BOLTKV_STRESS === '1';
const DURATION_MS = STRESS ? 60_000 : 3_000;
const MIN_EVENTS = STRESS ? 40 : 4;

/** A TCP proxy in front of a member's peer port that the test can cut and heal. */
class PeerProxy {
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  cut = false;
  constructor(readonly port: number, readonly target: number) {}
  start(): Promise<void> {
    return new Promise((resolve) => {
      this.server = createServer((inbound) => {
        if (this.cut) {
          inbound.destroy();
          return;
        }
        const outbound = connect({ host: '127.0.0.1', port: this.target });
        for (const s of [inbound, outbound]) {
          this.sockets.add(s);
          s.on('error', () => undefined);
          s.once('close', () => {
            this.sockets.delete(s);
            inbound.destroy();
            outbound.destroy();
          });
        }
        inbound.pipe(outbound);
        outbound.pipe(inbound);
      });
      this.server.listen(this.port, '127.0.0.1', () => resolve());
    });
  }
  partition(): void {
    this.cut = true;
    for (const s of this.sockets) s.destroy();
  }
  heal(): void {
    this.cut = false;
  }
  async close(): Promise<void> {
    this.partition();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

interface Proc { name: string; child: ChildProcess | undefined; clientPort: number; peerURL: string; listenURL: string; dir: string; exited: Promise<void>; state: 'new' | 'existing' }

interface Answer { ok: boolean; value?: string | null; code?: string; consistentIndex?: number; leader?: number; memberId?: number; raftAppliedIndex?: number; snapshotsReceived?: number; id?: number }

/** Small so the voters snapshot and compact their logs early: a late learner needs a snapshot. */
const SNAPSHOT_COUNT = 20;
const CATCH_UP_ENTRIES = 5;

function call(port: number, path: string, body: unknown, timeoutMs = 3000): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString()));
        } catch (err) {
          reject(err);
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

test('kill -9 members in a loop while clients write and read, a learner added late, caught up by snapshot and promoted: linearizable, nothing acknowledged lost, files sound and equal', { timeout: 120_000 }, async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'boltkv-procs-'));
  const procs: Proc[] = [];
  const rng = new Rng(Number(process.env.BOLTKV_PROC_SEED ?? 7));
  for (const name of ['p1', 'p2', 'p3']) {
    const url = `http://127.0.0.1:${await freePort()}`;
    procs.push({ name, child: undefined, clientPort: await freePort(), peerURL: url, listenURL: url, dir: join(root, name), exited: Promise.resolve(), state: 'new' });
  }
  // p3's peers reach it only through a proxy the test controls
  const p3 = procs[2]!;
  const proxy = new PeerProxy(Number(new URL(p3.peerURL).port), await freePort());
  p3.listenURL = `http://127.0.0.1:${proxy.target}`;
  await proxy.start();
  let partitions = 0;
  const voters = procs.map((p) => ({ name: p.name, peerURLs: [p.peerURL] }));
  // the learner p4, started later with --initial-cluster-state existing after member add
  const p4URL = `http://127.0.0.1:${await freePort()}`;
  const p4: Proc = { name: 'p4', child: undefined, clientPort: await freePort(), peerURL: p4URL, listenURL: p4URL, dir: join(root, 'p4'), exited: Promise.resolve(), state: 'existing' };
  const launch = async (p: Proc): Promise<void> => {
    const initialCluster = p === p4 ? [...voters, { name: p4.name, peerURLs: [p4.peerURL] }] : voters;
    const cfg = {
      name: p.name, dataDir: p.dir, listenPeerURL: p.listenURL, initialCluster, initialClusterState: p.state, tickMs: 50, electionTick: 10,
      clientPort: p.clientPort, requestTimeoutTicks: 40, snapshotCount: SNAPSHOT_COUNT, catchUpEntries: CATCH_UP_ENTRIES,
    };
    const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=boltkv-source', join(import.meta.dirname, 'proc', 'member-proc.ts')], {
      env: { ...process.env, BOLTKV_MEMBER: JSON.stringify(cfg) }, stdio: ['ignore', 'pipe', 'inherit'],
    });
    p.child = child;
    p.exited = new Promise<void>((r) => child.once('exit', () => r()));
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('ready')) resolve(); });
      child.once('exit', (code) => reject(new Error(`member ${p.name} exited during start (${code})`)));
    });
  };
  const history: Operation[] = [];
  let clock = 0;
  let seq = 0;
  let stop = false;
  let kills = 0;
  let p4Kills = 0;
  try {
    await Promise.all(procs.map(launch));
    const keys = ['a', 'b', 'c'];
    const client = async (id: number): Promise<void> => {
      while (!stop) {
        const p = rng.pick(procs);
        if (p.child === undefined) {
          await new Promise((r) => setTimeout(r, 20));
          continue;
        }
        const key = rng.pick(keys);
        const input: KvInput = rng.bool(0.5) ? { kind: 'put', key, value: `v${++seq}` } : { kind: 'get', key };
        const callAt = ++clock;
        let output: KvOutput | undefined;
        let ret = Infinity;
        try {
          const r = await call(p.clientPort, input.kind === 'put' ? '/put' : '/get', input);
          if (r.ok) {
            output = input.kind === 'put' ? { kind: 'put' } : { kind: 'get', value: r.value ?? null };
            ret = ++clock;
          } else if (r.code === 'ERR_NO_LEADER') {
            output = undefined; // never proposed
          } else if (input.kind === 'put') {
            output = { kind: 'unknown' };
          }
        } catch {
          if (input.kind === 'put') output = { kind: 'unknown' };
        }
        if (output !== undefined) history.push({ client: id, input, output, call: callAt, ret });
      }
    };
    const clients = Array.from({ length: 4 }, (_, i) => client(i));

    // Learner phase: once every voter has applied well past a snapshot (its log no longer starts at
    // 1), add p4 as a learner through one member, start it as existing, wait until it caught up by
    // snapshot, promote it (the leader refuses while it is not in sync), then it joins the faults.
    const eventually = async <T>(what: string, f: () => Promise<T | undefined>, ms = 20_000): Promise<T> => {
      const until = Date.now() + ms;
      let last: unknown = 'no answer';
      for (;;) {
        try {
          const v = await f();
          if (v !== undefined) return v;
        } catch (err) {
          last = err;
        }
        if (Date.now() > until) assert.fail(`timed out waiting for ${what}: ${String(last)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const compacted = 2 * SNAPSHOT_COUNT + CATCH_UP_ENTRIES;
    await eventually('voters to apply past a snapshot', async () => {
      const st = await Promise.all(procs.map((p) => call(p.clientPort, '/status', {})));
      return st.every((s) => s.ok && (s.raftAppliedIndex ?? 0) >= compacted) ? true : undefined;
    });
    const learnerId = await eventually('member add --learner', async () => {
      const r = await call(rng.pick(procs).clientPort, '/member/add', { peerURL: p4.peerURL });
      if (!r.ok) throw new Error(JSON.stringify(r));
      return r.id;
    });
    await launch(p4);
    let learnerSnapshots = 0;
    await eventually('the learner to catch up', async () => {
      const [l, ...st] = await Promise.all([p4, ...procs].map((p) => call(p.clientPort, '/status', {})));
      const lead = st.find((s) => s.ok && s.leader === s.memberId);
      if (l === undefined || lead === undefined || !l.ok) return undefined;
      learnerSnapshots = l.snapshotsReceived ?? 0;
      return learnerSnapshots >= 1 && (l.raftAppliedIndex ?? 0) >= 0.9 * (lead.raftAppliedIndex ?? Infinity) ? true : undefined;
    });
    let notInSync = 0;
    await eventually('member promote', async () => {
      const answers = await Promise.all(procs.map((p) => call(p.clientPort, '/member/promote', { id: learnerId })));
      if (answers.some((r) => r.ok)) return true;
      notInSync += answers.filter((r) => r.code === 'ERR_LEARNER_NOT_READY').length;
      throw new Error(JSON.stringify(answers));
    });
    procs.push(p4);
    const end = Date.now() + DURATION_MS;
    // at least a few faults however slow the machine is (starting a member process takes a while)
    for (let ev = 0; ev < MIN_EVENTS || Date.now() < end; ev++) {
      await new Promise((r) => setTimeout(r, rng.int(300, 1200)));
      if (ev % 3 === 2) {
        proxy.partition();
        partitions++;
        await new Promise((r) => setTimeout(r, rng.int(300, 1500)));
        proxy.heal();
        continue;
      }
      // the promoted learner is the first victim, so a restart of it is always exercised
      const victim = ev === 0 ? p4 : rng.pick(procs);
      if (victim.child === undefined) continue;
      victim.child.kill('SIGKILL');
      kills++;
      if (victim === p4) p4Kills++;
      const child = victim.child;
      victim.child = undefined;
      await victim.exited;
      void child;
      await new Promise((r) => setTimeout(r, rng.int(100, 600)));
      await launch(victim);
    }
    stop = true;
    await Promise.all(clients);
    // everyone up, let the cluster settle, then read every key through each member
    let statuses: Awaited<ReturnType<typeof call>>[] = [];
    const settleEnd = Date.now() + 20_000;
    for (;;) {
      statuses = await Promise.all(procs.map((p) => call(p.clientPort, '/status', {}).catch(() => ({ ok: false }))));
      const cis = statuses.map((s) => s.consistentIndex);
      if (statuses.every((s) => s.ok && s.leader !== 0) && cis.every((c) => c === cis[0])) break;
      if (Date.now() > settleEnd) assert.fail(`members did not converge: ${JSON.stringify(statuses)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const k of keys) {
      const r = await call(procs[0]!.clientPort, '/get', { key: k }, 10_000);
      assert.ok(r.ok, `final read of ${k}: ${JSON.stringify(r)}`);
      const c0 = ++clock;
      history.push({ client: 99, input: { kind: 'get', key: k }, output: { kind: 'get', value: r.value ?? null }, call: c0, ret: ++clock });
    }
    const v = checkKv(history);
    assert.ok(v.ok, `history of ${history.length} operations is not linearizable on key ${v.badKey}`);
    const acked = history.filter((o) => o.input.kind === 'put' && o.ret !== Infinity).length;
    assert.ok(acked >= 5, `only ${acked} acknowledged writes`);
    assert.ok(kills >= 3 && partitions >= 1, `only ${kills} kills and ${partitions} partitions`);
    t.diagnostic(`${history.length} operations checked (${acked} acknowledged writes), ${kills} kill -9 (${p4Kills} of the promoted learner), ${partitions} partitions of p3`);
    t.diagnostic(`learner p4 caught up by ${learnerSnapshots} snapshot(s), promoted after ${notInSync} "not in sync" refusals`);
    for (const k of keys) {
      const final = history.filter((o) => o.client === 99 && o.input.key === k).at(-1)!;
      const value = final.output.kind === 'get' ? final.output.value : null;
      const last = history.filter((o) => o.input.key === k && o.input.kind === 'put' && o.ret !== Infinity).sort((a, b) => a.ret - b.ret).at(-1);
      if (last === undefined) continue;
      const src = history.find((o) => o.input.kind === 'put' && o.input.value === value);
      assert.ok(src !== undefined && (src === last || src.ret > last.call), `key ${k}: acknowledged ${JSON.stringify(last.input)} lost (found ${value})`);
    }
  } finally {
    stop = true;
    await proxy.close();
    for (const p of new Set([...procs, p4])) {
      if (p.child !== undefined) {
        p.child.kill('SIGTERM');
        await p.exited;
      }
    }
  }
  const hashes = procs.map((p) => {
    const b = BoltBackend.open(join(p.dir, 'boltkv.db'));
    try {
      assert.deepEqual(b.db.check(), [], `${p.name}: check()`);
      return b.view((r) => hashKVOfBackend(r, 0).hash);
    } finally {
      b.close();
    }
  });
  assert.ok(hashes.every((h) => h === hashes[0]), `HashKV differs between members: ${hashes}`);
  rmSync(root, { recursive: true, force: true });
});
