/**
 * Member ids as etcd derives them: for the initial members from the peer URLs and the cluster
 * token, so every member started from the same --initial-cluster computes the same ids; for a
 * member added through the API from its peer URLs and the time (etcd's MemberAdd passes no token
 * and now), so a removed member's URLs can be added again under a new id. A member added so learns
 * its id from the cluster when it starts (member-join.ts). 52 bits: exact as a JS number.
 */
import { createHash } from 'node:crypto';

export function memberIdFor(
  peerURLs: readonly string[],
  clusterToken = 'boltkv-cluster',
  unixSeconds?: number,
): number {
  const hash = createHash('sha1')
    .update([...peerURLs].sort().join(''))
    .update(clusterToken);
  if (unixSeconds !== undefined) hash.update(String(unixSeconds));
  const h = hash.digest();
  const id = h.readUIntBE(0, 6) * 16 + (h[6]! >> 4);
  return id === 0 ? 1 : id;
}

/** Parses etcd's --initial-cluster "n1=http://a:2380,n2=http://b:2380" (a name may repeat for several URLs). */
export function parseInitialCluster(s: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const part of s
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p.length > 0)) {
    const eq = part.indexOf('=');
    if (eq <= 0 || eq === part.length - 1) throw new Error(`--initial-cluster: "${part}" is not name=url`);
    const name = part.slice(0, eq);
    const url = part.slice(eq + 1);
    new URL(url); // throws on a malformed URL
    out.set(name, [...(out.get(name) ?? []), url]);
  }
  return out;
}
