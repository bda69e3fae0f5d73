/** etcdctl's simple printer for key-values: key and value lines, as UTF-8 text or hex (--hex). */
import type { KeyValue } from '../api/index.ts';

export const text = (b: Uint8Array, hex: boolean): string =>
  hex ? Buffer.from(b).toString('hex') : Buffer.from(b).toString('utf8');

export function kvLines(kvs: readonly KeyValue[], hex: boolean, keysOnly = false, valueOnly = false): string[] {
  const lines: string[] = [];
  for (const kv of kvs) {
    if (!valueOnly) lines.push(text(kv.key, hex));
    if (!keysOnly) lines.push(text(kv.value, hex));
  }
  return lines;
}
