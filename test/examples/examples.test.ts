/**
 * Every file in examples/ runs as its own process (tsx, boltkv resolved to src/ through the
 * boltkv-source condition), exits 0 and prints the line that shows it did its job. An example
 * without an expectation here fails, so a new example cannot go unchecked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const EXAMPLES = join(ROOT, 'examples');

/** For each example, lines its output must contain (each a pattern matched against whole lines). */
const EXPECT: Record<string, RegExp[]> = {
  'quickstart.ts': [
    /^ {2}alice = \{"age":31\}$/,
    /^after batch: 103 entries in users$/,
    /^reader still sees alice: \{"age":31\}$/,
    /^check\(\): \[\]$/,
    /^done$/,
  ],
  'kv-lease-watch.ts': [
    /^compare-and-swap: first won, second lost$/,
    /^lease \d+: TTL \d+s of 60s, keys \[app\/lock\]$/,
    /^ {2}watch rev \d+: DELETE app\/lock \(was owner-1\)$/,
    /^lease \d+ expired; app\/session is gone$/,
    /^ {2}resumed at rev \d+: PUT app\/config = v4$/,
    /^done$/,
  ],
  'raft-ready-loop.ts': [
    /^leader elected after \d+ ticks: node [123]$/,
    /^node [123]: leader, commit \d+, applied \[set x=1, set y=2, set x=3\]$/,
    /^all 3 nodes applied the 3 proposals in order$/,
  ],
};

/** Public entry points only: an example is what a user can copy. */
const PUBLIC_IMPORT = /^(node:|boltkv$|boltkv\/(raft|freelist)$)/;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(file: string): Promise<Run> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=boltkv-source', join(EXAMPLES, file)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 45_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolveRun({ code, stdout, stderr });
    });
  });
}

const files = readdirSync(EXAMPLES)
  .filter((f) => f.endsWith('.ts'))
  .sort();

test('examples/ holds the three documented examples', () => {
  for (const f of Object.keys(EXPECT)) assert.ok(files.includes(f), `examples/${f} is missing`);
});

for (const file of files) {
  test(`examples/${file} runs and prints what it did`, { timeout: 60_000 }, async () => {
    const expected = EXPECT[file];
    assert.ok(expected, `examples/${file} has no expected output in test/examples/examples.test.ts`);
    const source = readFileSync(join(EXAMPLES, file), 'utf8');
    for (const m of source.matchAll(/\bfrom\s+'([^']+)'/g)) {
      assert.match(m[1] ?? '', PUBLIC_IMPORT, `examples/${file} imports ${m[1]}, not a public entry point`);
    }
    const r = await run(file);
    assert.equal(r.code, 0, `examples/${file} exited ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
    const lines = r.stdout.split('\n');
    for (const pattern of expected) {
      assert.ok(
        lines.some((l) => pattern.test(l)),
        `examples/${file} printed no line matching ${pattern}\n${r.stdout}`,
      );
    }
  });
}
