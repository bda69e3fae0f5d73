/**
 * The layering of docs/architecture.md, enforced: every import of src/**\/*.ts is parsed (with the
 * TypeScript compiler's own pre-processor, so comments and strings never count) and checked against
 * the table below. A lower layer importing a higher one fails, and so does a runtime import of a
 * package that is not a dependency (it would break the installed package).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { builtinModules } from 'node:module';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, posix, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = join(ROOT, 'src');

/** Shared foundations every layer may import; they import no other part of src. */
const FOUNDATION = 'foundation';

/**
 * Which layers each layer may import (besides itself and the foundation). Keep in step with the
 * "Layers" section of docs/architecture.md.
 */
const ALLOWED: Record<string, readonly string[]> = {
  [FOUNDATION]: [],
  bolt: [],
  mvcc: ['bolt'],
  watch: ['mvcc'],
  api: ['bolt', 'mvcc', 'watch'],
  raft: [],
  // The network face and replication: above the in-process API.
  gateway: ['bolt', 'mvcc', 'watch', 'api'],
  server: ['bolt', 'mvcc', 'watch', 'api', 'gateway', 'replication'],
  client: ['mvcc', 'watch', 'api', 'gateway'],
  replication: ['bolt', 'mvcc', 'watch', 'api', 'raft'],
  cli: ['bolt', 'mvcc', 'watch', 'api', 'raft', 'gateway', 'server', 'client', 'replication'],
  // The package entry re-exports the public layers; nothing imports it.
  entry: ['bolt', 'mvcc', 'watch', 'api', 'raft', 'gateway', 'server', 'client', 'replication'],
};

/**
 * Finer seams inside a layer: a file matching `from` may import, inside its own layer, only files
 * matching one of `to` (the foundation is always allowed).
 */
const SEAMS: { from: RegExp; to: RegExp[]; why: string }[] = [
  {
    from: /^bolt\/freelist\//,
    to: [/^bolt\/freelist\//, /^bolt\/errors\.ts$/],
    why: 'the freelists are a leaf of the engine (exported alone as boltkv/freelist)',
  },
];

/** Files of a layer that may import the bolt engine from mvcc: only the backend adapter. */
const MVCC_BOLT_DOOR = /^mvcc\/backend\/bolt\.ts$/;

function layerOf(file: string): string {
  if (file === 'index.ts') return 'entry';
  if (file === 'errors.ts' || file === 'keys.ts') return FOUNDATION;
  const top = file.split('/')[0] ?? '';
  return file.includes('/') ? top : `unknown file ${file}`;
}

interface Violation {
  file: string;
  imports: string;
  why: string;
}

/**
 * Checks a set of source files (paths relative to src/, posix separators) against the table.
 * `deps` are the package's runtime dependencies.
 */
function checkImports(sources: Map<string, string>, deps: ReadonlySet<string>): Violation[] {
  const out: Violation[] = [];
  const builtins = new Set(builtinModules);
  for (const [file, text] of sources) {
    const from = layerOf(file);
    const allowed = ALLOWED[from];
    if (!allowed) {
      out.push({
        file,
        imports: '-',
        why: `layer "${from}" is not in the layer table (test/architecture.test.ts, docs/architecture.md)`,
      });
      continue;
    }
    const info = ts.preProcessFile(text, true, true);
    for (const ref of info.importedFiles) {
      const spec = ref.fileName;
      if (spec.startsWith('.')) {
        const target = posix.normalize(posix.join(posix.dirname(file), spec));
        if (target.startsWith('../')) {
          out.push({ file, imports: spec, why: 'reaches outside src/' });
          continue;
        }
        const to = layerOf(target);
        if (to === 'entry') {
          out.push({ file, imports: spec, why: 'imports the package entry (src/index.ts); import the layer itself' });
        } else if (to !== from && to !== FOUNDATION && !allowed.includes(to)) {
          out.push({ file, imports: spec, why: `${from} may not import ${to}` });
        } else if (from === FOUNDATION && to !== FOUNDATION) {
          out.push({ file, imports: spec, why: `the foundation may not import ${to}` });
        } else if (from === 'mvcc' && to === 'bolt' && !MVCC_BOLT_DOOR.test(file)) {
          out.push({
            file,
            imports: spec,
            why: 'the revision layer reaches the engine only through mvcc/backend/bolt.ts',
          });
        } else {
          for (const seam of SEAMS) {
            if (seam.from.test(file) && to === from && !seam.to.some((r) => r.test(target))) {
              out.push({ file, imports: spec, why: seam.why });
            }
          }
        }
      } else {
        const bare = spec.startsWith('node:') ? spec.slice(5) : spec;
        const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : (spec.split('/')[0] ?? spec);
        if (builtins.has(bare) || builtins.has(bare.split('/')[0] ?? bare)) continue;
        if (pkg === 'boltkv')
          out.push({ file, imports: spec, why: 'src imports itself by package name; use a relative path' });
        else if (!deps.has(pkg))
          out.push({ file, imports: spec, why: `${pkg} is not a runtime dependency in package.json` });
      }
    }
  }
  return out;
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

function srcFiles(): Map<string, string> {
  const m = new Map<string, string>();
  for (const p of walk(SRC)) m.set(relative(SRC, p).split(sep).join('/'), readFileSync(p, 'utf8'));
  return m;
}

function runtimeDeps(): Set<string> {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    dependencies?: Record<string, string>;
    optionalDependencies?: Record<string, string>;
    peerDependencies?: Record<string, string>;
  };
  return new Set([
    ...Object.keys(pkg.dependencies ?? {}),
    ...Object.keys(pkg.optionalDependencies ?? {}),
    ...Object.keys(pkg.peerDependencies ?? {}),
  ]);
}

const format = (vs: Violation[]): string =>
  vs.map((v) => `  src/${v.file} imports '${v.imports}': ${v.why}`).join('\n');

test('src/ imports point only down the layers of docs/architecture.md', () => {
  const sources = srcFiles();
  assert.ok(sources.size > 50, 'src/ looks empty');
  const violations = checkImports(sources, runtimeDeps());
  assert.deepEqual(violations, [], `layering violations:\n${format(violations)}`);
});

test('the layer check catches upward, sideways and undeclared imports', () => {
  const deps = new Set(['msgpackr']);
  const bad = new Map<string, string>([
    ['bolt/db.ts', "import { MvccStore } from '../mvcc/store.ts';"],
    ['bolt/tx.ts', "import type { Watcher } from '../watch/types.ts';\nexport { x } from '../raft/index.ts';"],
    ['mvcc/store.ts', "const hub = await import('../watch/hub.ts');\nimport { open } from '../bolt/index.ts';"],
    ['watch/hub.ts', "import { open } from '../bolt/db.ts';"],
    ['raft/log.ts', "import '../mvcc/types.ts';"],
    ['errors.ts', "import { BoltError } from './bolt/errors.ts';"],
    ['api/open.ts', "import { x } from '../index.ts';"],
    ['bolt/freelist/array.ts', "import { Page } from '../page.ts';"],
    ['client/connect.ts', "import { open } from '../bolt/index.ts';\nimport fc from 'fast-check';"],
    ['mystery/x.ts', "import { a } from '../errors.ts';"],
    ['bolt/page.ts', "import { open } from 'boltkv';"],
  ]);
  const found = checkImports(bad, deps).map((v) => `${v.file} -> ${v.imports}`);
  assert.deepEqual(found, [
    'bolt/db.ts -> ../mvcc/store.ts',
    'bolt/tx.ts -> ../watch/types.ts',
    'bolt/tx.ts -> ../raft/index.ts',
    'mvcc/store.ts -> ../watch/hub.ts',
    'mvcc/store.ts -> ../bolt/index.ts',
    'watch/hub.ts -> ../bolt/db.ts',
    'raft/log.ts -> ../mvcc/types.ts',
    'errors.ts -> ./bolt/errors.ts',
    'api/open.ts -> ../index.ts',
    'bolt/freelist/array.ts -> ../page.ts',
    'client/connect.ts -> ../bolt/index.ts',
    'client/connect.ts -> fast-check',
    'mystery/x.ts -> -',
    'bolt/page.ts -> boltkv',
  ]);
  const good = new Map<string, string>([
    [
      'bolt/db.ts',
      "import { Panic } from '../errors.ts';\nimport fs from 'node:fs';\nimport { createRequire } from 'module';",
    ],
    ['mvcc/backend/bolt.ts', "import { open } from '../../bolt/index.ts';\nimport { Packr } from 'msgpackr';"],
    ['api/kv-store.ts', "import { WatchHub } from '../watch/hub.ts';\nimport { prefixEnd } from '../keys.ts';"],
    ['bolt/freelist/hashmap.ts', "import { Panic } from '../errors.ts';\nimport { PageTable } from './page-table.ts';"],
    ['index.ts', "export * from './bolt/index.ts';\nexport * as raft from './raft/index.ts';"],
    ['keys.ts', "import { Buffer } from 'node:buffer';\n// import { x } from './bolt/db.ts';"],
  ]);
  assert.deepEqual(checkImports(good, deps), []);
});

test('docs/architecture.md names only source files that exist, and says which are missing', (t) => {
  const doc = readFileSync(join(ROOT, 'docs/architecture.md'), 'utf8');
  const files = new Set(srcFiles().keys());
  const named = new Set([...doc.matchAll(/`src\/([\w./-]+\.ts)`/g)].map((m) => m[1] ?? ''));
  const stale = [...named].filter((f) => !files.has(f));
  assert.deepEqual(stale, [], 'docs/architecture.md names files that no longer exist');
  const undocumented = [...files].filter((f) => !named.has(f));
  if (undocumented.length > 0) t.diagnostic(`not yet in docs/architecture.md: ${undocumented.join(', ')}`);
  assert.ok(named.size >= 60, `docs/architecture.md maps only ${named.size} files`);
});
