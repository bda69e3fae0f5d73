/**
 * package.json as the packaging rules of issue 10 want it, checked without building or network (the
 * install test covers the real tarball): consumers run no build script, every export and the bin
 * map a dist/ file to a source file that exists, and the metadata a registry page shows is there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

interface Manifest {
  name: string;
  type?: string;
  license?: string;
  author?: string;
  repository?: { type?: string; url?: string };
  engines?: { node?: string };
  main?: string;
  types?: string;
  bin?: Record<string, string>;
  exports?: Record<string, string | Record<string, string>>;
  files?: string[];
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

const RAW = readFileSync(join(ROOT, 'package.json'), 'utf8');
const pkg = JSON.parse(RAW) as Manifest;

test('package.json names each top-level field once (a merge can leave a duplicate that JSON.parse hides)', () => {
  const keys = [...RAW.matchAll(/^ {2}"([^"]+)":/gm)].map((m) => m[1]);
  const dups = keys.filter((k, i) => keys.indexOf(k) !== i);
  assert.deepEqual(dups, []);
  assert.ok(keys.length >= 10, 'package.json is not indented as expected (two spaces)');
});

/** dist/x/y.js (or .d.ts) → src/x/y.ts, as tsconfig.build.json compiles it. */
function sourceOf(distPath: string): string {
  return distPath
    .replace(/^\.\/dist\//, 'src/')
    .replace(/\.d\.ts$/, '.ts')
    .replace(/\.js$/, '.ts');
}

test('installing runs no build script of ours; packing builds dist/', () => {
  const scripts = pkg.scripts ?? {};
  for (const hook of ['preinstall', 'install', 'postinstall', 'prepare']) {
    assert.equal(scripts[hook], undefined, `a "${hook}" script runs on consumers' (or contributors') installs`);
  }
  assert.match(scripts.prepack ?? '', /\bbuild\b/, 'prepack must build dist/');
  assert.match(scripts.build ?? '', /tsc -p tsconfig\.build\.json/);
});

test('every export, main, types and the bin name a dist file built from an existing source', () => {
  const targets: string[] = [];
  for (const [sub, target] of Object.entries(pkg.exports ?? {})) {
    if (sub === './package.json') {
      assert.equal(target, './package.json');
      continue;
    }
    if (typeof target !== 'object') assert.fail(`export ${sub} needs conditions`);
    const conditions: Record<string, string> = target;
    const keys = Object.keys(conditions);
    assert.ok(keys.indexOf('types') < keys.indexOf('default'), `export ${sub}: "types" must precede "default"`);
    const source: string = conditions['boltkv-source'] ?? '';
    assert.ok(source && existsSync(join(ROOT, source)), `export ${sub}: boltkv-source ${source} does not exist`);
    for (const c of ['types', 'default']) {
      const built: string = conditions[c] ?? '';
      assert.ok(built, `export ${sub} lacks "${c}"`);
      targets.push(built);
      assert.equal(
        sourceOf(built),
        source.replace(/^\.\//, ''),
        `export ${sub}: ${c} ${built} is not built from ${source}`,
      );
    }
  }
  assert.ok('./package.json' in (pkg.exports ?? {}), 'boltkv/package.json is not exported');
  for (const entry of ['.', './raft', './freelist'])
    assert.ok(entry in (pkg.exports ?? {}), `export ${entry} is missing`);
  for (const t of [pkg.main, pkg.types, ...Object.values(pkg.bin ?? {})]) {
    assert.ok(t, 'main, types or a bin target is empty');
    targets.push(t);
  }
  for (const t of targets) {
    assert.match(t, /^\.\/dist\//, `${t} is not under dist/`);
    assert.ok(existsSync(join(ROOT, sourceOf(t))), `${t} would be built from ${sourceOf(t)}, which does not exist`);
  }
  assert.deepEqual(Object.keys(pkg.bin ?? {}), ['boltkv']);
  assert.match(readFileSync(join(ROOT, sourceOf(pkg.bin?.boltkv ?? '')), 'utf8'), /^#!\/usr\/bin\/env node\n/);
});

test('the tarball list ships dist, docs and the changelog, not sources; metadata is complete', () => {
  const files = pkg.files ?? [];
  for (const f of ['dist', 'docs', 'CHANGELOG.md']) assert.ok(files.includes(f), `"files" lacks ${f}`);
  assert.ok(!files.some((f) => /^(src|test|bench|examples)\b/.test(f)), '"files" ships sources or tests');
  assert.equal(pkg.type, 'module');
  assert.equal(pkg.license, 'MIT');
  assert.match(readFileSync(join(ROOT, 'LICENSE'), 'utf8'), /^MIT License\n\nCopyright \(c\) \d{4} boltkv authors\n/);
  assert.equal(pkg.repository?.type, 'git');
  assert.match(pkg.repository?.url ?? '', /^git\+https:\/\/.+\.git$/);
  assert.equal(pkg.engines?.node, '>=20');
  const deps = new Set(Object.keys(pkg.dependencies ?? {}));
  for (const dev of ['typescript', 'tsx', 'fast-check', 'tinybench', '@biomejs/biome']) {
    assert.ok(!deps.has(dev), `${dev} is a runtime dependency; it belongs in devDependencies`);
  }
  assert.ok(
    deps.has('fs-ext-extra-prebuilt') && !deps.has('fs-ext'),
    'the flock comes from the prebuilt fork (README "Install")',
  );
});
