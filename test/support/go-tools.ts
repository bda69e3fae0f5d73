/**
 * Builds and runs our Go helpers (test/interop/go/*) against Debian's bbolt source in GOPATH mode.
 * Binaries are cached in test/interop/go/bin/<hash of sources and go version>/ so a test run builds
 * at most once; a build goes to a temp name first and is renamed into place, so two test files
 * building at the same time cannot see half a binary.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import type { DumpEntry, Spec } from './workload.ts';

const GOPATH = '/usr/share/gocode';
const BBOLT_DIRS = [join(GOPATH, 'src/go.etcd.io/bbolt'), join(GOPATH, 'src/github.com/etcd-io/bbolt')];
const GO_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../interop/go');
const PROGRAMS = ['boltdump', 'boltwrite'] as const;
type Program = (typeof PROGRAMS)[number];

/** What boltdump prints. */
export interface GoDump {
  problems: string[];
  pageSize: number;
  txid: number;
  buckets: DumpEntry[];
}

export interface GoTools {
  /** Run bbolt's tx.Check on the file and dump its content. Throws if bbolt cannot open it. */
  dump(path: string): GoDump;
  /** Create a bbolt file from a spec with Go's bbolt. */
  write(path: string, spec: Spec): void;
}

let cached: GoTools | string | undefined;

function goEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, GOPATH, GO111MODULE: 'off', GOFLAGS: '' };
  // Go refuses to build without a cache directory; CI containers may have no HOME.
  if (!env.GOCACHE && !env.HOME && !env.XDG_CACHE_HOME) env.GOCACHE = join(tmpdir(), 'boltkv-go-cache');
  return env;
}

function goVersion(): string | undefined {
  const r = spawnSync('go', ['version'], { encoding: 'utf8', env: goEnv() });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function sourceHash(version: string): string {
  const h = createHash('sha256').update(version);
  for (const p of PROGRAMS) {
    const dir = join(GO_DIR, p);
    for (const f of readdirSync(dir).sort()) if (f.endsWith('.go')) h.update(f).update(readFileSync(join(dir, f)));
  }
  return h.digest('hex').slice(0, 16);
}

function build(): GoTools | string {
  const version = goVersion();
  if (!version) return 'the `go` command is not installed (Debian: apt-get install golang-go)';
  if (!BBOLT_DIRS.some((d) => existsSync(d))) {
    return `bbolt's Go source is not under ${GOPATH} (Debian: apt-get install golang-github-coreos-bbolt-dev golang-golang-x-sys-dev)`;
  }
  const binDir = join(GO_DIR, 'bin', sourceHash(version));
  mkdirSync(binDir, { recursive: true });
  for (const p of PROGRAMS) {
    const out = join(binDir, p);
    if (existsSync(out)) continue;
    const tmp = `${out}.tmp-${process.pid}`;
    const r = spawnSync('go', ['build', '-o', tmp, `./${p}`], { cwd: GO_DIR, encoding: 'utf8', env: goEnv() });
    if (r.status !== 0) {
      rmSync(tmp, { force: true });
      // A build failure with Go and bbolt present is our bug, not a missing tool: never skip it.
      throw new Error(`go build ${p} failed:\n${r.stderr}`);
    }
    renameSync(tmp, out);
  }
  const bin = (p: Program): string => join(binDir, p);
  return {
    dump(path: string): GoDump {
      const r = spawnSync(bin('boltdump'), [path], { encoding: 'utf8', maxBuffer: 1 << 30 });
      if (r.status !== 0) throw new Error(`boltdump ${path} failed (${r.status}): ${r.stderr}`);
      return JSON.parse(r.stdout) as GoDump;
    },
    write(path: string, spec: Spec): void {
      const r = spawnSync(bin('boltwrite'), [path], {
        input: JSON.stringify(spec),
        encoding: 'utf8',
        maxBuffer: 1 << 26,
      });
      if (r.status !== 0) throw new Error(`boltwrite ${path} failed (${r.status}): ${r.stderr}`);
    },
  };
}

/** The tools, or the reason they are unavailable. Builds once per process. */
export function goTools(): GoTools | string {
  cached ??= build();
  return cached;
}

/**
 * The tools for a test, or undefined after skipping it loudly. With BOLTKV_REQUIRE_INTEROP=1
 * (CI) a missing tool fails the test instead of skipping.
 */
export function requireGoTools(t: TestContext): GoTools | undefined {
  const tools = goTools();
  if (typeof tools !== 'string') return tools;
  if (process.env.BOLTKV_REQUIRE_INTEROP === '1') {
    throw new Error(`BOLTKV_REQUIRE_INTEROP=1 but interop is unavailable: ${tools}`);
  }
  console.warn(`\n*** SKIPPING Go interop test "${t.name}": ${tools} ***\n`);
  t.skip(`interop unavailable: ${tools}`);
  return undefined;
}
