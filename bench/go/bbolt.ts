/**
 * Runs the engine workloads against Go's bbolt: builds bench/go/bbolt-bench (our program) in
 * GOPATH mode against Debian's bbolt source, runs it, and reads its JSON lines back as results
 * shaped like the TypeScript side's.
 *
 * The binary is cached in the OS temp directory under a hash of the source and the Go version, so
 * nothing built lands in the repository and a rerun does not rebuild.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EngineResult, WorkloadId, WorkloadOptions } from '../lib/engine-workloads.ts';

const GOPATH = '/usr/share/gocode';
const BBOLT_DIRS = [join(GOPATH, 'src/go.etcd.io/bbolt'), join(GOPATH, 'src/github.com/etcd-io/bbolt')];
const SRC_DIR = join(dirname(fileURLToPath(import.meta.url)), 'bbolt-bench');

export const GO_SYSTEM = 'bbolt (Go)';
export const GO_SETTINGS = 'Debian golang-github-coreos-bbolt-dev, hashmap freelist, fdatasync on commit';

function goEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, GOPATH, GO111MODULE: 'off', GOFLAGS: '' };
  if (!env.GOCACHE && !env.HOME && !env.XDG_CACHE_HOME) env.GOCACHE = join(tmpdir(), 'boltkv-go-cache');
  return env;
}

/** Path of the built program, or why it cannot be built here (Go or bbolt absent). */
export function buildGoBench(): { bin: string } | { skip: string } {
  const v = spawnSync('go', ['version'], { encoding: 'utf8', env: goEnv() });
  if (v.error || v.status !== 0)
    return { skip: 'the `go` command is not installed (Debian: apt-get install golang-go)' };
  if (!BBOLT_DIRS.some((d) => existsSync(d))) {
    return {
      skip: `bbolt's Go source is not under ${GOPATH} (Debian: golang-github-coreos-bbolt-dev golang-golang-x-sys-dev)`,
    };
  }
  const hash = createHash('sha256')
    .update(v.stdout)
    .update(readFileSync(join(SRC_DIR, 'main.go')))
    .digest('hex')
    .slice(0, 16);
  const dir = join(tmpdir(), 'boltkv-bench-go', hash);
  const bin = join(dir, 'bbolt-bench');
  if (existsSync(bin)) return { bin };
  mkdirSync(dir, { recursive: true });
  const tmp = `${bin}.tmp-${process.pid}`;
  const r = spawnSync('go', ['build', '-o', tmp, '.'], { cwd: SRC_DIR, encoding: 'utf8', env: goEnv() });
  if (r.status !== 0) {
    rmSync(tmp, { force: true });
    // Go and bbolt are present, so a failed build is our bug: say so rather than skip.
    throw new Error(`go build of bench/go/bbolt-bench failed:\n${r.stderr}`);
  }
  renameSync(tmp, bin);
  return { bin };
}

const IDS: Record<string, WorkloadId> = {
  'load, 1 txn': 'load1',
  'get (random)': 'get',
  'range 100 (cursor)': 'range',
  'put, durable commit': 'putDurable',
};

interface GoLine {
  workload: string;
  opsPerSec: number;
  p50Us?: number;
  p99Us?: number;
  ops: number;
  totalMs: number;
  note?: string;
}

function idOf(workload: string): WorkloadId {
  if (IDS[workload]) return IDS[workload];
  if (workload.startsWith('load, ')) return 'loadChunk';
  if (workload.startsWith('put, batched')) return 'putBatched';
  throw new Error(`bbolt-bench printed an unknown workload ${JSON.stringify(workload)}`);
}

/**
 * Runs every workload in Go. `load1CapS` bounds the one-transaction load, which is quadratic in
 * bbolt (a transaction's inserts all land in one node until commit splits it).
 */
export async function runGoBench(
  bin: string,
  dir: string,
  o: WorkloadOptions,
  load1CapS: number,
  onLine: (r: EngineResult) => void = () => {},
): Promise<EngineResult[]> {
  mkdirSync(dir, { recursive: true });
  const args = [
    '-dir',
    dir,
    '-keys',
    String(o.keys),
    '-chunk',
    String(o.chunk),
    '-time',
    String(o.timeMs),
    '-load1-cap',
    String(o.skipLoad1 ? 0 : load1CapS),
    '-callers',
    String(o.callers),
    '-batch-puts',
    String(o.batchPuts),
  ];
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: EngineResult[] = [];
  let buf = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (!line) continue;
      const g = JSON.parse(line) as GoLine;
      const r: EngineResult = {
        system: GO_SYSTEM,
        workload: g.workload,
        id: idOf(g.workload),
        opsPerSec: g.opsPerSec,
        p50Us: g.p50Us ?? null,
        p99Us: g.p99Us ?? null,
        ops: g.ops,
        totalMs: g.totalMs,
        note: g.note ?? '',
      };
      out.push(r);
      onLine(r);
    }
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`bbolt-bench exited with ${code}: ${err.trim()}`);
  return out;
}
