/**
 * How a member started with --initial-cluster-state existing learns its id. Ids of members added
 * through the API mix in the time (member-id.ts), so the new member cannot compute its own: as
 * etcd does (GetClusterFromRemotePeers), it asks the other members for the member list over the
 * peer port and finds itself by its peer URLs. On any restart the list in its own file answers.
 */
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import type { FileSystem } from '../bolt/index.ts';
import { nodeFileSystem } from '../bolt/index.ts';
import { BoltBackend } from '../mvcc/backend/bolt.ts';
import { ReplicationError } from './errors.ts';
import { FrameReader, encodeFrame } from './frames.ts';
import { MembersStore } from './members.ts';
import type { MemberInfo } from './proposal.ts';

/** The member whose peer URLs are exactly `own` (in any order), if listed. */
export function findByPeerURLs(list: readonly MemberInfo[], own: readonly string[]): MemberInfo | undefined {
  const want = [...own].sort().join('\n');
  return list.find((m) => [...m.peerURLs].sort().join('\n') === want);
}

/** The member list kept in an existing member file, or undefined when there is no file yet. */
export function memberListInFile(path: string, fileSystem: FileSystem = nodeFileSystem): MemberInfo[] | undefined {
  if (fileSystem === nodeFileSystem && !existsSync(path)) return undefined;
  const b = BoltBackend.open(path, { fileSystem });
  try {
    return b.view((r) => MembersStore.load(r)).list();
  } finally {
    void b.close();
  }
}

/** Asks one peer URL for its member list; rejects on refusal, garbage or after `timeoutMs`. */
export function fetchMemberList(url: string, timeoutMs: number): Promise<MemberInfo[]> {
  const u = new URL(url);
  return new Promise<MemberInfo[]>((resolve, reject) => {
    const s = connect({ host: u.hostname, port: Number(u.port) });
    const reader = new FrameReader();
    const timer = setTimeout(
      () => s.destroy(new ReplicationError('ERR_TIMEOUT', `${url}: no member list within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const done = (err: unknown, list?: MemberInfo[]): void => {
      clearTimeout(timer);
      s.destroy();
      if (list !== undefined) resolve(list);
      else reject(err);
    };
    s.once('connect', () => s.write(encodeFrame({ t: 'members' })));
    s.on('data', (d) => {
      try {
        for (const f of reader.push(d)) if (f.t === 'list' && Array.isArray(f.l)) return done(undefined, f.l);
      } catch (err) {
        done(err);
      }
      return undefined;
    });
    s.once('error', (err) => done(err));
    s.once('close', () => done(new ReplicationError('ERR_CLOSED', `${url}: closed without a member list`)));
  });
}

/**
 * The id this member's own file lists for its peer URLs: on a restart that is its id, whatever
 * --initial-cluster-state says (etcd ignores the flag once the data dir exists).
 */
export function memberIdInFile(
  path: string,
  ownPeerURLs: readonly string[],
  fileSystem?: FileSystem,
): number | undefined {
  const local = memberListInFile(path, fileSystem);
  return local !== undefined ? findByPeerURLs(local, ownPeerURLs)?.id : undefined;
}

/** A new member's id, from the first of the other members' peer URLs that answers with a list naming it. */
export async function memberIdFromPeers(o: {
  ownPeerURLs: readonly string[];
  otherPeerURLs: readonly string[];
  timeoutMs?: number;
}): Promise<{ id: number; members: MemberInfo[] }> {
  let last: unknown = new ReplicationError('ERR_INVALID_ARGUMENT', 'no other member in --initial-cluster to ask');
  for (const url of o.otherPeerURLs) {
    try {
      const list = await fetchMemberList(url, o.timeoutMs ?? 2000);
      const me = findByPeerURLs(list, o.ownPeerURLs);
      if (me !== undefined) return { id: me.id, members: list };
      last = new ReplicationError(
        'ERR_MEMBER_NOT_FOUND',
        `the cluster lists no member with peer URLs ${o.ownPeerURLs.join(',')}: add it first (member add)`,
      );
    } catch (err) {
      last = err;
    }
  }
  throw last;
}
