// NodeFile's short vectored writes: when the kernel writes only part of a writev (rare on regular
// files, so forced here), the rest is written buffer by buffer from the first unwritten byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nodeFileSystem } from '../../src/bolt/node-file.ts';
import { inTempDir } from '../support/temp-dir.ts';

type Finisher = { finishWritev(bufs: readonly Uint8Array[], position: number, written: number): void };

test('the rest of a short writev lands after the bytes already written, at every cut', async () => {
  await inTempDir((dir) => {
    const bufs = [Buffer.from('abc'), Buffer.from('defg'), Buffer.from('hi')];
    const whole = Buffer.concat(bufs);
    for (let written = 0; written < whole.length; written++) {
      const path = join(dir, `f${written}`);
      writeFileSync(path, Buffer.alloc(10));
      const f = nodeFileSystem.open(path, { readOnly: false, mode: 0o644 });
      try {
        // the first `written` bytes as the kernel would have left them; the finisher writes the rest
        f.write(whole.subarray(0, written), 10);
        (f as unknown as Finisher).finishWritev(bufs, 10, written);
      } finally {
        f.close();
      }
      assert.deepEqual(readFileSync(path).subarray(10), whole, `cut at ${written}`);
    }
  }, 'boltkv-node-file-');
});
