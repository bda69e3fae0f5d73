/**
 * boltkv quick start: `npm start` runs this on a fresh data file in a temp dir.
 * It shows the engine (buckets, transactions, cursors) and prints what it did.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { open } from 'boltkv';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boltkv-quickstart-'));
const file = path.join(dir, 'quickstart.db');
const text = (b: Uint8Array | null | undefined): string => (b ? Buffer.from(b).toString() : String(b));

const db = open(file);
console.log(`opened ${db.path} (page size ${db.pageSize})`);

// One read-write transaction: commits (with fdatasync) when the function returns.
db.update((tx) => {
  const users = tx.createBucketIfNotExists('users');
  users.put('alice', JSON.stringify({ age: 31 }));
  users.put('bob', JSON.stringify({ age: 27 }));
  const id = users.nextSequence();
  users.createBucketIfNotExists('sessions').put(`s${id}`, 'active');
});

// A read-only snapshot: iterate in key order; sub-buckets have a null value.
db.view((tx) => {
  const users = tx.bucket('users')!;
  for (const [key, value] of users) console.log(`  ${text(key)} = ${value === null ? '(bucket)' : text(value)}`);
  const c = users.cursor();
  console.log(`  last key: ${text(c.last()?.[0])}, seek('b'): ${text(c.seek('b')?.[0])}`);
});

// Group commit: these share one transaction and one fsync.
await Promise.all(
  Array.from({ length: 100 }, (_, i) => db.batch((tx) => tx.bucket('users')!.put(`user-${i}`, String(i)))),
);
console.log(`after batch: ${db.view((tx) => [...tx.bucket('users')!].length)} entries in users`);

// A reader keeps its snapshot while a writer commits.
const reader = db.begin(false);
db.update((tx) => tx.bucket('users')!.delete('alice'));
console.log(`reader still sees alice: ${text(reader.bucket('users')!.get('alice'))}`);
reader.rollback();
console.log(`check(): ${JSON.stringify(db.check())}`);
db.close();

fs.rmSync(dir, { recursive: true, force: true });
console.log('done');
