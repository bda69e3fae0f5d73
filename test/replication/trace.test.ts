// BOLTKV_TRACE: marks reach a per-process file at exit when set, and nothing is written when not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const script = `import { mark, tracing } from ${JSON.stringify(join(import.meta.dirname, '../../src/replication/trace.ts'))};
mark('first', 1); mark('second', 'x'); console.log(String(tracing));`;

function runWith(env: Record<string, string>): string {
  return execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    env: { ...process.env, BOLTKV_TRACE: '', ...env },
    encoding: 'utf8',
  }).trim();
}

test('marks are written to <dir>/trace-<pid>.tsv at exit when BOLTKV_TRACE is set, in order, on a monotonic clock', () => {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-trace-'));
  try {
    assert.equal(runWith({ BOLTKV_TRACE: dir }), 'true');
    const files = readdirSync(dir);
    assert.equal(files.length, 1);
    assert.match(files[0]!, /^trace-\d+\.tsv$/);
    const rows = readFileSync(join(dir, files[0]!), 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split('\t'));
    assert.deepEqual(
      rows.map((r) => [r[2], r[3]]),
      [
        ['first', '1'],
        ['second', 'x'],
      ],
    );
    assert.ok(BigInt(rows[0]![0]!) <= BigInt(rows[1]![0]!));
    assert.equal(`trace-${rows[0]![1]}.tsv`, files[0]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('without BOLTKV_TRACE, tracing is off (marks are a no-op)', () => {
  assert.equal(runWith({}), 'false');
});
