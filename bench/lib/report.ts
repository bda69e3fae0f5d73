/**
 * The little every benchmark shares: a table on stdout and a JSON file in bench/results/ that
 * records which machine produced the figures, since numbers without their machine mean little.
 *
 *   printTable('allocate(1), ns/op', rows);
 *   writeResults('allocator', { rows });   // -> bench/results/allocator.json
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where results go: bench/results next to this helper's parent directory. */
export const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'results');

export type Cell = string | number | boolean | null;
export type Row = Record<string, Cell>;

export interface MachineInfo {
  node: string;
  platform: string;
  arch: string;
  cpu: string;
  cores: number;
  memoryGiB: number;
  date: string;
}

export function machineInfo(): MachineInfo {
  const list = cpus();
  return {
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    cpu: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    date: new Date().toISOString(),
  };
}

function show(v: Cell): string {
  if (v === null) return '';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return String(v);
    if (Number.isInteger(v)) return v.toLocaleString('en-US');
    return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3);
  }
  return String(v);
}

/**
 * Print rows as an aligned text table (numbers right-aligned), under a title. Columns are the
 * union of the rows' keys in first-seen order. Plain text so it survives logs and CI output.
 */
export function printTable(title: string, rows: readonly Row[]): void {
  const cols: string[] = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!cols.includes(k)) cols.push(k);
  const cells = rows.map((r) => cols.map((c) => show(r[c] ?? null)));
  const numeric = cols.map((c) => rows.every((r) => r[c] === undefined || r[c] === null || typeof r[c] === 'number'));
  const width = cols.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (vals: string[]): string =>
    vals.map((v, i) => (numeric[i] ? v.padStart(width[i]!) : v.padEnd(width[i]!))).join('  ');
  const out = [`\n${title}`, line(cols), width.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)];
  console.log(out.join('\n'));
}

/**
 * Write bench/results/<name>.json holding `{ name, machine, ...data }` and return its path.
 * `data` must be JSON-serialisable; `name` is a plain file stem such as 'allocator'.
 */
export function writeResults(name: string, data: Record<string, unknown>): string {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`result name ${JSON.stringify(name)} is not a plain file stem`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, `${name}.json`);
  writeFileSync(path, `${JSON.stringify({ name, machine: machineInfo(), ...data }, null, 2)}\n`);
  return path;
}

/** Write another artefact (an SVG plot, a CSV) next to the JSON results; returns its path. */
export function writeArtifact(fileName: string, text: string): string {
  if (!/^[A-Za-z0-9._-]+$/.test(fileName)) throw new Error(`artifact name ${JSON.stringify(fileName)} is not plain`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, fileName);
  writeFileSync(path, text);
  return path;
}

/** Human form of a duration given in nanoseconds: "87 ns", "12.3 µs", "4.56 ms", "1.20 s". */
export function formatNs(ns: number): string {
  if (!Number.isFinite(ns)) return String(ns);
  if (ns < 1e3) return `${ns.toFixed(0)} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toPrecision(3)} µs`;
  if (ns < 1e9) return `${(ns / 1e6).toPrecision(3)} ms`;
  return `${(ns / 1e9).toPrecision(3)} s`;
}
