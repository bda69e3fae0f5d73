/**
 * The engine's published declarations show the documented API only (issue 10): the build config
 * strips `@internal` members, so pager, poison, installMeta, allocate, free, spill, node and meta
 * fields are absent from the .d.ts, constructors are private, and a `--strict` consumer compiled
 * against the declarations can use the documented calls and cannot reach an internal one (each
 * `@ts-expect-error` below must be needed, or the compile fails).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Internal member names that must not appear in the public classes' declarations. */
const INTERNALS: Record<string, string[]> = {
  DB: [
    'pager',
    'fileSystem',
    'openOptions',
    'adoptFile',
    'retired',
    'poison',
    'installMeta',
    'endWriter',
    'endReader',
    'checkNotClosed',
    'checkCanWrite',
    'freelist',
    'freelistOverflow',
    'meta',
    'writer',
    'readers',
    'create',
  ],
  Tx: [
    'pager',
    'meta',
    'root',
    'dirty',
    'mutations',
    'managed',
    'internalCommit',
    'own',
    'pageBuffer',
    'treePage',
    'allocate',
    'free',
    'abort',
    'checkOpen',
    'checkWritable',
    'onCommit',
    'create',
  ],
  Bucket: [
    'rootPgid',
    'rootNode',
    'spill',
    'rebalance',
    'materializeRoot',
    'noteDelete',
    'rootFrame',
    'fromValue',
    'keyBytes',
    'sequenceDirty',
    'create',
    'children',
  ],
  Cursor: ['seekRaw', 'isAt', 'flagsHere', 'valueHere', 'materialize', 'stack', 'create'],
};

function emitDeclarations(outDir: string): void {
  const config = ts.getParsedCommandLineOfConfigFile(
    join(ROOT, 'tsconfig.build.json'),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => assert.fail(ts.flattenDiagnosticMessageText(d.messageText, '\n')),
    },
  );
  assert.ok(config, 'tsconfig.build.json parses');
  assert.equal(config.options.stripInternal, true, 'the build strips @internal members');
  // Only the engine's entry point (and what it reaches), for speed; the options are the build's own.
  const options: ts.CompilerOptions = {
    ...config.options,
    outDir,
    declaration: true,
    emitDeclarationOnly: true,
    sourceMap: false,
    declarationMap: false,
  };
  const program = ts.createProgram([join(ROOT, 'src/bolt/index.ts')], options);
  const result = program.emit();
  const diags = [...ts.getPreEmitDiagnostics(program), ...result.diagnostics].filter(
    (d) => d.category === ts.DiagnosticCategory.Error,
  );
  assert.deepEqual(
    diags.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')),
    [],
  );
}

function classBody(dts: string, name: string): string {
  const start = dts.indexOf(`export declare class ${name} `);
  assert.ok(start >= 0, `class ${name} declared`);
  return dts.slice(start, dts.indexOf('\n}', start));
}

const CONSUMER = `
import { open, BoltError, type DB, type Tx, type Bucket, type Cursor, type Entry } from './out/bolt/index.js';

const db: DB = open('x.db', { noSync: true, lockTimeoutMs: 10 });
db.update((tx: Tx) => {
  const b: Bucket = tx.createBucketIfNotExists('b');
  b.put('k', 'v');
  const c: Cursor = b.cursor();
  const e: Entry | undefined = c.first();
  const s: string | undefined = e?.[1]?.toString();
  void s;
  for (const [k, v] of b.range({ gte: 'a', limit: 10 })) void [k.toString('hex'), v];
  return b.get('k')?.toString('utf8');
});
void db.updateAsync(async (tx) => tx.bucket('b')?.put('k2', 'v2'));
void db.batch((tx) => tx.bucket('b')?.delete('k'));
const err: unknown = null;
if (err instanceof BoltError && err.code === 'ERR_CLOSED') void err.message;
const closed: boolean = db.closed;
void closed;
db.view((tx) => {
  // @ts-expect-error internal
  void tx.meta;
  // @ts-expect-error internal
  void tx.root;
  // @ts-expect-error internal
  tx.allocate(1);
  // @ts-expect-error internal
  tx.free(3, 0);
  // @ts-expect-error internal
  void tx.dirty;
  const b = tx.bucket('b')!;
  // @ts-expect-error internal
  b.spill();
  // @ts-expect-error internal
  b.rebalance();
  // @ts-expect-error internal
  void b.rootNode;
  // @ts-expect-error internal
  b.cursor().seekRaw(new Uint8Array(1));
});
// @ts-expect-error internal
void db.pager;
// @ts-expect-error internal
db.poison(new Error('x'));
// @ts-expect-error internal
db.installMeta({});
// @ts-expect-error internal
void db.freelist;
// @ts-expect-error read-only
db.closed = true;
db.close();
`;

test('the engine declarations hide internals, and a --strict consumer sees only the documented API', () => {
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-dts-'));
  try {
    const out = join(dir, 'out');
    emitDeclarations(out);
    const read = (f: string): string => readFileSync(join(out, 'bolt', f), 'utf8');
    const files: Record<string, string> = {
      DB: read('db.d.ts'),
      Tx: read('tx.d.ts'),
      Bucket: read('bucket.d.ts'),
      Cursor: read('cursor.d.ts'),
    };
    for (const [cls, names] of Object.entries(INTERNALS)) {
      const body = classBody(files[cls]!, cls);
      assert.match(body, /private constructor\(\);/, `${cls}: constructor is private`);
      const leaked = names.filter((n) =>
        new RegExp(`^\\s+(?:private |readonly |static |get )*${n}\\b`, 'm').test(body),
      );
      assert.deepEqual(leaked, [], `${cls} declaration shows internals`);
    }
    // The engine's entry point does not re-export internal modules.
    const index = read('index.d.ts');
    for (const mod of ['pager', 'node', 'page', 'meta', 'check'])
      assert.doesNotMatch(index, new RegExp(`'\\./${mod}\\.`), `index.d.ts exports ./${mod}`);

    writeFileSync(join(dir, 'consumer.ts'), CONSUMER);
    const program = ts.createProgram([join(dir, 'consumer.ts')], {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      lib: ['lib.es2022.d.ts', 'lib.esnext.disposable.d.ts'],
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      types: ['node'],
      typeRoots: [join(ROOT, 'node_modules/@types')],
      skipLibCheck: false,
    });
    const diags = ts.getPreEmitDiagnostics(program).filter((d) => d.category === ts.DiagnosticCategory.Error);
    const text = diags.map(
      (d) =>
        `${d.file ? `${d.file.fileName.replace(dir, '')}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}` : ''} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`,
    );
    assert.deepEqual(text, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
