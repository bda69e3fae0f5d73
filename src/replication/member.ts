import type { KV } from '../api/kv.ts';
import { ReplicationError } from './errors.ts';
import { openParts } from './member-files.ts';
import { type MemberOptions } from './member-options.ts';
import { MemberMaintenance } from './member-maintenance.ts';

export class Member extends MemberMaintenance implements KV {
  /** Opens (or creates) the member's file and starts its raft node. */
  static async open(opts: MemberOptions): Promise<Member> {
    if (!Number.isSafeInteger(opts.id) || opts.id <= 0)
      throw new ReplicationError('ERR_INVALID_ARGUMENT', 'member id must be a positive integer');
    const { backend, storage, store, members } = await openParts(opts);
    if (storage.lastIndex() === 0 && opts.initialCluster !== undefined) {
      const voters = opts.initialCluster.filter((m) => !m.isLearner).map((m) => m.id);
      const learners = opts.initialCluster.filter((m) => m.isLearner).map((m) => m.id);
      if (!voters.includes(opts.id) && !learners.includes(opts.id)) {
        await store.close();
        throw new ReplicationError('ERR_INVALID_ARGUMENT', `member ${opts.id} is not in the initial cluster`);
      }
      // Every initial member starts from the same snapshot at index 1 listing the cluster.
      storage.save({
        entries: [],
        hardState: { term: 1, vote: 0, commit: 1 },
        snapshot: { data: new Uint8Array(0), metadata: { index: 1, term: 1, confState: { voters, learners } } },
      });
      const writes = storage.takeWrites();
      for (const m of opts.initialCluster) writes.push(...members.put(m));
      const done = backend.stage(writes);
      await backend.flush();
      await done;
    }
    return new Member(opts, storage, backend, store, members);
  }
}
