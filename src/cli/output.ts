/**
 * Output for humans and scripts, etcdctl-style: `-w simple` (plain lines, bbolt's text), `-w table`
 * (boxed columns) and `-w json`. Values are shown in bbolt's formats (auto, ascii-encoded, hex,
 * bytes, redacted).
 */
import { usage } from './errors.ts';

export interface CliIO {
  out: (s: string) => void;
  err: (s: string) => void;
  /** True when stderr is a terminal: progress bars are drawn only then. */
  isTTY: boolean;
  stdin?: () => Promise<string>;
  /** Ends long-running commands (watch); the binary aborts it on SIGINT/SIGTERM. */
  signal?: AbortSignal;
}

export type WriteOut = 'simple' | 'table' | 'json';

export function writeOutOf(v: unknown): WriteOut {
  if (v === 'simple' || v === 'table' || v === 'json') return v;
  throw usage(`unsupported output format: ${String(v)} (simple, table or json)`);
}

export type ValueFormat = 'auto' | 'ascii-encoded' | 'hex' | 'bytes' | 'redacted';

export function valueFormatOf(v: unknown): ValueFormat {
  if (v === 'auto' || v === 'ascii-encoded' || v === 'hex' || v === 'bytes' || v === 'redacted') return v;
  throw usage(`unsupported format: ${String(v)} (auto, ascii-encoded, hex, bytes or redacted)`);
}

function printable(b: Uint8Array): boolean {
  let s: string;
  try {
    s = new TextDecoder('utf-8', { fatal: true }).decode(b);
  } catch {
    return false;
  }
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (c < 0x20 || c === 0x7f || (c >= 0x80 && c < 0xa0)) return false;
  }
  return true;
}

/** Go's strconv.Quote for bytes: printable ASCII as is, the rest escaped. */
export function quote(b: Uint8Array): string {
  let s = '"';
  for (const c of b) {
    if (c === 0x22) s += '\\"';
    else if (c === 0x5c) s += '\\\\';
    else if (c === 0x0a) s += '\\n';
    else if (c === 0x09) s += '\\t';
    else if (c === 0x0d) s += '\\r';
    else if (c >= 0x20 && c < 0x7f) s += String.fromCharCode(c);
    else s += `\\x${c.toString(16).padStart(2, '0')}`;
  }
  return `${s}"`;
}

export function formatBytes(b: Uint8Array, f: ValueFormat): string {
  switch (f) {
    case 'auto':
      return printable(b) ? Buffer.from(b).toString('utf8') : Buffer.from(b).toString('hex');
    case 'ascii-encoded':
      return quote(b);
    case 'hex':
      return Buffer.from(b).toString('hex');
    case 'bytes':
      return Buffer.from(b).toString('latin1');
    case 'redacted':
      return `<redacted len:${b.length}>`;
  }
}

/** Parse a key given on the command line: as text, or as hex. */
export function parseKey(s: string, format: string): Uint8Array {
  if (format === 'ascii-encoded') return new TextEncoder().encode(s);
  if (format === 'hex') {
    if (!/^([0-9a-fA-F]{2})*$/.test(s)) throw usage(`invalid hex: ${s}`);
    return new Uint8Array(Buffer.from(s, 'hex'));
  }
  throw usage(`unsupported parse format: ${format} (ascii-encoded or hex)`);
}

/** A boxed table like etcdctl's tablewriter output. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  const fmt = (r: readonly string[]): string =>
    `|${r.map((c, i) => ` ${c.padStart(0).padEnd(widths[i]!)} `).join('|')}|`;
  return [line, fmt(header.map((h) => h.toUpperCase())), line, ...rows.map(fmt), line].join('\n');
}

export function json(v: unknown): string {
  return JSON.stringify(v, (_k, x) =>
    typeof x === 'bigint' ? (x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : x.toString()) : x,
  );
}
