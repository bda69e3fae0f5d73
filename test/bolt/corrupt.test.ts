// Corrupt files: random byte flips in each kind of page (meta, freelist, branch, leaf, overflow)
// and random truncations of valid files. Whatever the damage, open() throws a BoltError, or the
// database opens, check() returns findings without throwing, and every read either works or throws
// a BoltError: never another exception, never a Panic, never a hang, never a dead process. Each
// case runs in a child process (test/support/corrupt-runner.ts) under a time bound.
// Targeted cases then pin down what must be detected: a bad meta falls back to the other one,
// two bad metas / a wrong version / a wrong magic are refused at open, and structural damage to
// pages shows up in check().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { open } from '../../src/bolt/index.ts';
import { FaultyDisk } from '../support/faulty-fs.ts';
import { Rng } from '../support/rng.ts';
import { applyOp } from '../support/bolt-ops.ts';
import { committedStates, hexOf, type Op } from '../support/workload.ts';
import { mapPages, resealMeta, type PageKind, type PageMap } from '../support/page-map.ts';
import {
  contentHash,
  type CaseFile,
  type CaseResult,
  type CorruptCase,
  type Mutation,
} from '../support/corrupt-runner.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const RUNNER = resolve(HERE, '../support/corrupt-runner.ts');
const STRESS = process.env.BOLTKV_STRESS === '1';
const PER_KIND = STRESS ? 400 : 60;
const CASE_TIMEOUT_MS = 5_000;
const PS = 4096;

const h = hexOf;
/** A database with every page kind: nested, inline and deep buckets, overflow values, free pages. */
const TXS: Op[][] = [
  [
    { op: 'createBucket', path: [], name: h('many') },
    { op: 'fill', path: [h('many')], prefix: h('m'), start: 0, count: 15000, valueLen: 24, seed: 1 },
    { op: 'createBucket', path: [], name: h('big') },
    ...[0, 1, 2, 3, 4, 5].map(
      (i): Op => ({ op: 'put', path: [h('big')], k: h(`big${i}`), v: 'ab'.repeat(5000 + i * 1500) }),
    ),
    { op: 'createBucket', path: [], name: h('nest') },
    { op: 'createBucket', path: [h('nest')], name: h('inline') },
    { op: 'put', path: [h('nest'), h('inline')], k: h('a'), v: h('1') },
    { op: 'createBucket', path: [h('nest')], name: h('deep') },
    { op: 'fill', path: [h('nest'), h('deep')], prefix: h('d'), start: 0, count: 400, valueLen: 10, seed: 2 },
    { op: 'setSequence', path: [h('nest')], n: '123456' },
  ],
  [
    { op: 'unfill', path: [h('many')], prefix: h('m'), start: 500, count: 4000, valueLen: 0, seed: 0 },
    { op: 'delete', path: [h('big')], k: h('big1') },
    { op: 'delete', path: [h('big')], k: h('big4') },
    { op: 'nextSequence', path: [h('nest'), h('deep')] },
  ],
  [{ op: 'put', path: [h('nest'), h('inline')], k: h('b'), v: h('2') }],
];
const STATES = committedStates(TXS).map(contentHash);
/** Which committed state a content hash is, for messages. */
const stateName = (hash: string | undefined): string => {
  const i = hash === undefined ? -1 : STATES.indexOf(hash);
  return i >= 0 ? `the state after commit ${i}` : `no committed state (${hash})`;
};

function buildBase(options: { noFreelistSync?: boolean } = {}): Uint8Array {
  const disk = new FaultyDisk();
  // Freelist with every commit, so the older meta is the previous data commit (not the close's).
  const db = open('/base.db', { freelistWrite: 'commit', ...options, fileSystem: disk.fs });
  for (const ops of TXS) {
    db.update((tx) => {
      for (const op of ops) applyOp(tx, op);
    });
  }
  db.close();
  return disk.contents('/base.db');
}

/** Random flips inside one page, biased towards the header and first elements. */
function flipsIn(rng: Rng, page: number, pageSize: number): Mutation {
  const n = rng.int(1, 4);
  const at: number[] = [];
  const xor: number[] = [];
  for (let j = 0; j < n; j++) {
    const off = rng.bool() ? rng.int(0, 63) : rng.int(0, pageSize - 1);
    at.push(page * pageSize + off);
    xor.push(rng.int(1, 255));
  }
  return { kind: 'flip', at, xor };
}

/** Run cases in a child process, restarting it after a hang or crash. */
async function runCases(
  file: CaseFile,
  timeoutMs = CASE_TIMEOUT_MS,
): Promise<{ results: CaseResult[]; failures: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-corrupt-'));
  const casePath = join(dir, 'cases.json');
  writeFileSync(casePath, JSON.stringify(file));
  const results: CaseResult[] = [];
  const failures: string[] = [];
  try {
    let next = 0;
    while (next < file.cases.length) {
      next = await new Promise<number>((done) => {
        const child = spawn(
          process.execPath,
          ['--import', 'tsx', '--conditions=boltkv-source', RUNNER, casePath, String(next)],
          {
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        );
        let current = -1;
        let timer: NodeJS.Timeout | undefined;
        let buf = '';
        let stderr = '';
        let hung = false;
        child.stderr.on('data', (d: Buffer) => {
          stderr = (stderr + d.toString()).slice(-4000);
        });
        child.stdout.on('data', (d: Buffer) => {
          buf += d.toString();
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (line.startsWith('S ')) {
              current = Number(line.slice(2));
              clearTimeout(timer);
              timer = setTimeout(() => {
                hung = true;
                child.kill('SIGKILL');
              }, timeoutMs);
            } else if (line.startsWith('R ')) {
              clearTimeout(timer);
              results.push(JSON.parse(line.slice(2)) as CaseResult);
              current = -1;
            }
          }
        });
        child.on('exit', (code, signal) => {
          clearTimeout(timer);
          if (current < 0 && code === 0) return done(file.cases.length);
          if (current < 0) {
            failures.push(`runner died outside a case (code ${code}, signal ${signal}): ${stderr}`);
            return done(file.cases.length);
          }
          const c = file.cases[current]!;
          failures.push(
            hung
              ? `case ${current} (${c.name}): no answer within ${timeoutMs} ms (hang)`
              : `case ${current} (${c.name}): process died (code ${code}, signal ${signal}): ${stderr}`,
          );
          done(current + 1);
        });
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { results, failures };
}

function b64(b: Uint8Array): string {
  return Buffer.from(b).toString('base64');
}

function summarize(results: readonly CaseResult[]): string {
  const tally = new Map<string, number>();
  const bump = (k: string): void => void tally.set(k, (tally.get(k) ?? 0) + 1);
  for (const r of results) {
    if (r.open !== 'ok') bump(`open:${r.open}`);
    else {
      bump(r.problems.length > 0 ? 'opened, check() findings' : 'opened, check() clean');
      if (r.read !== 'ok') bump(`read:${r.read}`);
      if (r.write !== 'ok' && r.write !== 'skipped') bump(`write:${r.write}`);
    }
  }
  return [...tally].map(([k, n]) => `${k}=${n}`).join(' ');
}

test('random flips and truncations: typed errors or findings, never a crash or hang', async () => {
  const base = buildBase();
  const nofl = buildBase({ noFreelistSync: true });
  const map = mapPages(base, PS);
  for (const kind of ['meta', 'freelist', 'branch', 'leaf', 'overflow'] as PageKind[]) {
    assert.ok(map.pages[kind].length > 0, `the base file has no ${kind} page; the sweep would miss a page kind`);
  }
  const rng = new Rng(2024);
  const cases: CorruptCase[] = [];
  for (const kind of ['meta', 'freelist', 'branch', 'leaf', 'overflow'] as PageKind[]) {
    for (let i = 0; i < PER_KIND; i++) {
      const page = rng.pick(map.pages[kind]);
      cases.push({
        name: `flip ${kind} page ${page} #${i}`,
        base: 'base',
        mutations: [flipsIn(rng, page, PS)],
        wantContent: kind === 'meta',
        readOnly: i % 2 === 1,
      });
    }
  }
  for (let i = 0; i < PER_KIND; i++) {
    cases.push({
      name: `truncate #${i}`,
      base: 'base',
      mutations: [{ kind: 'truncate', length: rng.int(0, base.length - 1) }],
      readOnly: i % 2 === 1,
    });
  }
  const noflMap = mapPages(nofl, PS);
  const noflPages = [...noflMap.pages.branch, ...noflMap.pages.leaf, ...noflMap.pages.overflow];
  for (let i = 0; i < PER_KIND; i++) {
    cases.push({ name: `noFreelistSync flip #${i}`, base: 'nofl', mutations: [flipsIn(rng, rng.pick(noflPages), PS)] });
  }
  // Several pages at once, anywhere.
  for (let i = 0; i < PER_KIND; i++) {
    const muts: Mutation[] = [];
    for (let j = rng.int(2, 6); j > 0; j--) muts.push(flipsIn(rng, rng.int(0, base.length / PS - 1), PS));
    cases.push({ name: `multi-page flip #${i}`, base: 'base', mutations: muts, readOnly: i % 2 === 1 });
  }

  const { results, failures } = await runCases({ bases: { base: b64(base), nofl: b64(nofl) }, cases });
  const defects = results
    .filter((r) => r.defects.length > 0)
    .map((r) => `case ${r.i} (${cases[r.i]!.name}): ${r.defects.join('\n  ')}`);
  console.log(`corrupt sweep: ${cases.length} cases; ${summarize(results)}`);
  assert.deepEqual([...failures, ...defects], [], 'contract violations');
  assert.equal(results.length, cases.length);

  // A flip inside one meta page spoils at most that meta: the other one carries the file.
  for (const r of results) {
    const c = cases[r.i]!;
    if (!c.name.startsWith('flip meta')) continue;
    assert.equal(r.open, 'ok', `${c.name}: one bad meta must fall back to the other`);
    assert.deepEqual(r.problems, [], `${c.name}: check() after meta fallback`);
    assert.ok(
      r.content === STATES[3] || r.content === STATES[2],
      `${c.name}: content should be the last or the previous commit, is ${stateName(r.content)}`,
    );
  }
});

/** Targeted damage with a required outcome. */
function targeted(base: Uint8Array, map: PageMap): { name: string; c: CorruptCase; expect: (r: CaseResult) => void }[] {
  const cur = map.meta.page;
  const other = (1 - cur) as 0 | 1;
  const out: { name: string; c: CorruptCase; expect: (r: CaseResult) => void }[] = [];
  const add = (name: string, mutations: Mutation[], expect: (r: CaseResult) => void, wantContent = false): void => {
    out.push({ name, c: { name, base: 'base', mutations, wantContent }, expect });
  };
  const edit = (fn: (img: Uint8Array, dv: DataView) => void): Mutation[] => {
    const img = base.slice();
    fn(img, new DataView(img.buffer));
    // Express the edit as byte sets so the runner can replay it.
    const muts: Mutation[] = [];
    for (let i = 0; i < img.length; i++)
      if (img[i] !== base[i]) muts.push({ kind: 'set', at: i, hex: Buffer.from([img[i]!]).toString('hex') });
    return muts;
  };
  const openFails =
    (codes: string[]) =>
    (r: CaseResult): void => {
      assert.ok(codes.includes(r.open), `open should fail with one of ${codes}, got ${r.open}`);
    };
  const detected = (r: CaseResult): void => {
    assert.ok(
      r.open !== 'ok' || r.problems.length > 0 || r.read !== 'ok',
      'the damage went unnoticed: open ok, check() clean, reads fine',
    );
  };
  /** Structural damage: open may refuse the file (typed error), else check() must report it. */
  const checkFinds = (r: CaseResult): void => {
    assert.ok(r.open !== 'ok' || r.problems.length > 0, 'opened and check() reported nothing');
  };

  add(
    'current meta checksum broken → previous commit',
    [{ kind: 'flip', at: [cur * PS + 72], xor: [0xff] }],
    (r) => {
      assert.equal(r.open, 'ok');
      assert.deepEqual(r.problems, []);
      assert.ok(
        r.content === STATES[2],
        `falls back to the other meta: want the state after commit 2, got ${stateName(r.content)}`,
      );
    },
    true,
  );
  add(
    'older meta broken → latest commit',
    [{ kind: 'flip', at: [other * PS + 64], xor: [0x01] }],
    (r) => {
      assert.equal(r.open, 'ok');
      assert.deepEqual(r.problems, []);
      assert.ok(r.content === STATES[3], `want the state after commit 3, got ${stateName(r.content)}`);
    },
    true,
  );
  add(
    'both meta checksums broken',
    [{ kind: 'flip', at: [72, PS + 72], xor: [0x55, 0x55] }],
    openFails(['ERR_INVALID_FILE', 'ERR_CHECKSUM']),
  );
  add(
    'both magics wrong (resealed)',
    edit((img, dv) => {
      for (const p of [0, 1] as const) {
        dv.setUint32(p * PS + 16, 0xdeadbeef, true);
        resealMeta(img, p, PS);
      }
    }),
    openFails(['ERR_INVALID_FILE']),
  );
  add(
    'both versions 3 (resealed)',
    edit((img, dv) => {
      for (const p of [0, 1] as const) {
        dv.setUint32(p * PS + 20, 3, true);
        resealMeta(img, p, PS);
      }
    }),
    openFails(['ERR_VERSION_MISMATCH']),
  );
  add(
    'file shorter than a meta page',
    [{ kind: 'truncate', length: 100 }],
    openFails(['ERR_INVALID_FILE', 'ERR_CHECKSUM']),
  );
  add('truncated just after the meta pages', [{ kind: 'truncate', length: 2 * PS + 100 }], detected);
  add(
    'a leaf page typed as freelist',
    edit((_img, dv) => dv.setUint16(map.pages.leaf[0]! * PS + 8, 0x10, true)),
    checkFinds,
  );
  add(
    'a branch page typed as meta',
    edit((_img, dv) => dv.setUint16(map.pages.branch[0]! * PS + 8, 0x04, true)),
    checkFinds,
  );
  add(
    'a branch child beyond the high-water mark',
    edit((_img, dv) => {
      dv.setBigUint64(map.pages.branch[0]! * PS + 16 + 8, map.meta.pgid + 5n, true);
    }),
    detected,
  );
  add(
    'a branch child pointing at a meta page',
    edit((_img, dv) => {
      dv.setBigUint64(map.pages.branch[0]! * PS + 16 + 8, 1n, true);
    }),
    checkFinds,
  );
  add(
    'a reachable page listed as free',
    edit((_img, dv) => {
      const fl = map.pages.freelist[0]! * PS;
      const count = dv.getUint16(fl + 10, true);
      assert.ok(count > 0 && count < 0xffff, 'base freelist should hold a few ids');
      dv.setBigUint64(fl + 16, BigInt(map.pages.leaf[0]!), true);
    }),
    checkFinds,
  );
  add(
    'keys out of order within a leaf',
    edit((img, dv) => {
      // Find a leaf with at least two plain keys and make the first key sort after the second.
      for (const id of map.pages.leaf) {
        const p = id * PS;
        if (dv.getUint16(p + 10, true) < 2 || (dv.getUint32(p + 16, true) & 1) !== 0) continue;
        const keyAt = p + 16 + dv.getUint32(p + 16 + 4, true);
        img[keyAt] = 0xff;
        return;
      }
      assert.fail('no suitable leaf');
    }),
    checkFinds,
  );
  add(
    'a page id unreachable and not free',
    edit((_img, dv) => {
      // Drop the last id from the freelist: that page is then neither reachable nor free.
      const fl = map.pages.freelist[0]! * PS;
      const count = dv.getUint16(fl + 10, true);
      dv.setUint16(fl + 10, count - 1, true);
    }),
    checkFinds,
  );
  // Hostile headers: sizes and pointers that would make a naive reader allocate, loop or recurse.
  const branch = map.pages.branch[0]!;
  const leaf = map.pages.leaf[0]!;
  const fl = map.pages.freelist[0]!;
  const anything = (_r: CaseResult): void => undefined; // the runner already enforces the contract
  add(
    'freelist claims 2^40 ids (0xFFFF count form)',
    edit((_img, dv) => {
      dv.setUint16(fl * PS + 10, 0xffff, true);
      dv.setBigUint64(fl * PS + 16, 1n << 40n, true);
    }),
    detected,
  );
  add(
    'leaf overflow = 0xFFFFFFFF',
    edit((_img, dv) => dv.setUint32(leaf * PS + 12, 0xffffffff, true)),
    detected,
  );
  add(
    'branch overflow = 0xFFFFFFFF',
    edit((_img, dv) => dv.setUint32(branch * PS + 12, 0xffffffff, true)),
    detected,
  );
  add(
    'freelist overflow = 0xFFFFFFFF',
    edit((_img, dv) => dv.setUint32(fl * PS + 12, 0xffffffff, true)),
    detected,
  );
  add(
    'leaf count = 0xFFFF',
    edit((_img, dv) => dv.setUint16(leaf * PS + 10, 0xffff, true)),
    detected,
  );
  add(
    'branch count = 0',
    edit((_img, dv) => dv.setUint16(branch * PS + 10, 0, true)),
    anything,
  );
  add(
    'branch points at itself (a cycle)',
    edit((_img, dv) => dv.setBigUint64(branch * PS + 16 + 8, BigInt(branch), true)),
    checkFinds,
  );
  add(
    'branch points at its parent chain root',
    edit((_img, dv) => {
      // Every child of the first branch points back at the root of that bucket tree.
      const count = dv.getUint16(branch * PS + 10, true);
      for (let i = 0; i < count; i++) dv.setBigUint64(branch * PS + 16 + i * 16 + 8, BigInt(branch), true);
    }),
    checkFinds,
  );
  add(
    'leaf element pos far outside the page',
    edit((_img, dv) => dv.setUint32(leaf * PS + 16 + 4, 0x7fffffff, true)),
    detected,
  );
  add(
    'leaf key size far outside the page',
    edit((_img, dv) => dv.setUint32(leaf * PS + 16 + 8, 0x7fffffff, true)),
    detected,
  );
  add(
    'a plain value flagged as a sub-bucket',
    edit((_img, dv) => {
      for (const id of map.pages.leaf) {
        const p = id * PS;
        const n = dv.getUint16(p + 10, true);
        for (let i = 0; i < n; i++) {
          const e = p + 16 + i * 16;
          if ((dv.getUint32(e, true) & 1) === 0 && dv.getUint32(e + 12, true) < 16) {
            dv.setUint32(e, 1, true);
            return;
          }
        }
      }
      assert.fail('no short plain value found');
    }),
    anything,
  );
  add(
    'meta root points at the freelist page (resealed)',
    edit((img, dv) => {
      dv.setBigUint64(cur * PS + 32, BigInt(fl), true);
      resealMeta(img, cur, PS);
    }),
    detected,
  );
  add(
    'meta root points at a meta page (resealed)',
    edit((img, dv) => {
      dv.setBigUint64(cur * PS + 32, 0n, true);
      resealMeta(img, cur, PS);
    }),
    detected,
  );
  add(
    'meta high-water mark below the pages in use (resealed)',
    edit((img, dv) => {
      dv.setBigUint64(cur * PS + 56, 5n, true);
      resealMeta(img, cur, PS);
    }),
    detected,
  );
  add(
    'meta high-water mark 2^52 (resealed)',
    edit((img, dv) => {
      dv.setBigUint64(cur * PS + 56, 1n << 52n, true);
      resealMeta(img, cur, PS);
    }),
    detected,
  );
  add(
    'meta page size 1024 in both metas (resealed)',
    edit((img, dv) => {
      for (const p of [0, 1] as const) {
        dv.setUint32(p * PS + 24, 1024, true);
        resealMeta(img, p, PS);
      }
    }),
    detected,
  );
  add(
    'meta page size 3 in both metas (resealed)',
    edit((img, dv) => {
      for (const p of [0, 1] as const) {
        dv.setUint32(p * PS + 24, 3, true);
        resealMeta(img, p, PS);
      }
    }),
    openFails(['ERR_INVALID_FILE', 'ERR_CORRUPT_PAGE', 'ERR_CHECKSUM']),
  );
  add(
    'meta freelist id beyond the file (resealed)',
    edit((img, dv) => {
      dv.setBigUint64(cur * PS + 48, 1n << 40n, true);
      resealMeta(img, cur, PS);
    }),
    detected,
  );
  /** Offset of the first inline bucket's embedded leaf page header in the file. */
  const inlinePage = (dv: DataView): number => {
    for (const id of map.pages.leaf) {
      const p = id * PS;
      const n = dv.getUint16(p + 10, true);
      for (let i = 0; i < n; i++) {
        const e = p + 16 + i * 16;
        if ((dv.getUint32(e, true) & 1) === 0) continue;
        const valueAt = e + dv.getUint32(e + 4, true) + dv.getUint32(e + 8, true);
        if (dv.getBigUint64(valueAt, true) === 0n) return valueAt + 16;
      }
    }
    assert.fail('no inline bucket in the base file');
  };
  add(
    'inline bucket page count = 0xFFFF',
    edit((_img, dv) => dv.setUint16(inlinePage(dv) + 10, 0xffff, true)),
    detected,
  );
  add(
    'inline bucket element pos outside its value',
    edit((_img, dv) => dv.setUint32(inlinePage(dv) + 16 + 4, 0x10000, true)),
    detected,
  );
  add(
    'inline bucket page typed as branch',
    edit((_img, dv) => dv.setUint16(inlinePage(dv) + 8, 0x01, true)),
    anything,
  );
  return out;
}

test('targeted damage is refused at open or reported by check()', async () => {
  const base = buildBase();
  const map = mapPages(base, PS);
  const cases = targeted(base, map);
  const { results, failures } = await runCases({ bases: { base: b64(base) }, cases: cases.map((c) => c.c) });
  assert.deepEqual(failures, [], 'hangs or crashes');
  const errors: string[] = [];
  for (const r of results) {
    const c = cases[r.i]!;
    try {
      assert.deepEqual(r.defects, [], 'contract violations');
      c.expect(r);
    } catch (err) {
      errors.push(
        `${c.name}: ${err instanceof Error ? err.message : String(err)} (open=${r.open} read=${r.read} problems=${JSON.stringify(r.problems.slice(0, 3))})`,
      );
    }
  }
  assert.deepEqual(errors, []);
});

test('the case runner survives a hang, a dead process and an uncaught error, and reports each', async () => {
  const base = buildBase();
  const ok: CorruptCase = { name: 'untouched', base: 'base', mutations: [] };
  const cases: CorruptCase[] = [
    ok,
    { name: 'hang', base: 'base', mutations: [{ kind: 'selftest', what: 'hang' }] },
    ok,
    { name: 'exit', base: 'base', mutations: [{ kind: 'selftest', what: 'exit' }] },
    { name: 'throw', base: 'base', mutations: [{ kind: 'selftest', what: 'throw' }] },
    ok,
  ];
  const { results, failures } = await runCases({ bases: { base: b64(base) }, cases }, 3000);
  assert.deepEqual(
    results.map((r) => r.i),
    [0, 2, 5],
    'the good cases around the bad ones still ran',
  );
  for (const r of results)
    assert.deepEqual([r.open, r.problems, r.read, r.write, r.defects], ['ok', [], 'ok', 'ok', []]);
  assert.equal(failures.length, 3);
  assert.match(failures[0]!, /case 1 \(hang\): no answer within 3000 ms/);
  assert.match(failures[1]!, /case 3 \(exit\): process died \(code 70/);
  assert.match(failures[2]!, /case 4 \(throw\): process died .*TypeError: selftest/s);
});
