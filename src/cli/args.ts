/**
 * A small flag parser with Go's and etcdctl's spellings both accepted: `--flag value`,
 * `--flag=value`, `-flag value`, and bare booleans. Flags may come before or after positionals,
 * as both tools allow; `--` ends flags.
 */
import { usage } from './errors.ts';

export type FlagKind = 'string' | 'int' | 'number' | 'bool';

export interface FlagSpec {
  kind: FlagKind;
  /** Default when absent. */
  default?: string | number | boolean;
  /** One line for --help. */
  help: string;
  /** Other names (e.g. a short `-o`). */
  alias?: string[];
}

export type FlagSpecs = Record<string, FlagSpec>;
export type FlagValues = Record<string, string | number | boolean | undefined>;

export interface Parsed {
  flags: FlagValues;
  args: string[];
  help: boolean;
}

/** Flags every command accepts. */
export const COMMON_FLAGS: FlagSpecs = {
  'write-out': { kind: 'string', default: 'simple', alias: ['w'], help: 'output format: simple, table or json' },
};

export function parseArgs(argv: readonly string[], specs: FlagSpecs): Parsed {
  const all: FlagSpecs = { ...COMMON_FLAGS, ...specs };
  const byName = new Map<string, [string, FlagSpec]>();
  for (const [name, spec] of Object.entries(all)) {
    byName.set(name, [name, spec]);
    for (const a of spec.alias ?? []) byName.set(a, [name, spec]);
  }
  const flags: FlagValues = {};
  for (const [name, spec] of Object.entries(all)) flags[name] = spec.default;
  const args: string[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (a === '-h' || a === '--help' || a === '-help') {
      help = true;
      continue;
    }
    if (!a.startsWith('-') || a === '-' || /^-\d/.test(a)) {
      args.push(a);
      continue;
    }
    const body = a.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    const found = byName.get(name);
    if (!found) throw usage(`unknown flag: ${a}`);
    const [canonical, spec] = found;
    let raw: string;
    if (eq >= 0) raw = body.slice(eq + 1);
    else if (spec.kind === 'bool') raw = 'true';
    else {
      const next = argv[i + 1];
      if (next === undefined) throw usage(`flag needs an argument: ${a}`);
      raw = next;
      i++;
    }
    flags[canonical] = convert(canonical, spec, raw);
  }
  return { flags, args, help };
}

function convert(name: string, spec: FlagSpec, raw: string): string | number | boolean {
  switch (spec.kind) {
    case 'string':
      return raw;
    case 'bool':
      if (raw === 'true' || raw === '1') return true;
      if (raw === 'false' || raw === '0') return false;
      throw usage(`invalid boolean for --${name}: ${raw}`);
    case 'int': {
      if (!/^-?\d+$/.test(raw)) throw usage(`invalid integer for --${name}: ${raw}`);
      const n = Number(raw);
      if (!Number.isSafeInteger(n)) throw usage(`integer out of range for --${name}: ${raw}`);
      return n;
    }
    case 'number': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n)) throw usage(`invalid number for --${name}: ${raw}`);
      return n;
    }
  }
}

export function flagHelp(specs: FlagSpecs): string {
  const rows = Object.entries({ ...specs, ...COMMON_FLAGS }).map(([name, s]) => {
    const names = [`--${name}`, ...(s.alias ?? []).map((a) => (a.length === 1 ? `-${a}` : `--${a}`))].join(', ');
    const def = s.default !== undefined && s.default !== false ? ` (default ${JSON.stringify(s.default)})` : '';
    return `  ${names.padEnd(28)} ${s.help}${def}`;
  });
  return rows.join('\n');
}

export const str = (v: FlagValues[string]): string => (v === undefined ? '' : String(v));
export const num = (v: FlagValues[string]): number => (typeof v === 'number' ? v : 0);
export const bool = (v: FlagValues[string]): boolean => v === true;
