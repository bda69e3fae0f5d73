import type { Entry } from '../raft/index.ts';

/** Same budget rule as the raft core: the longest prefix within maxSize bytes, at least one entry. */
export function limitSizeOf(ents: Entry[], maxSize: number): Entry[] {
  if (ents.length === 0) return ents;
  let size = ents[0]!.data.length + 24;
  let n = 1;
  while (n < ents.length) {
    size += ents[n]!.data.length + 24;
    if (size > maxSize) break;
    n++;
  }
  return n === ents.length ? ents : ents.slice(0, n);
}
