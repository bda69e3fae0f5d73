/**
 * The member's bolt file as parts and as snapshots: opening it into the raft storage, the member
 * list and the revision layer (at start and after a snapshot install); the consistent copy a
 * leader sends a lagging peer; and, on the receiving side, the streamed copies waiting for raft to
 * hand their snapshot over.
 */
import { nodeFileSystem, type FileSystem } from '../bolt/index.ts';
import { BoltBackend } from '../mvcc/backend/bolt.ts';
import { MvccStore } from '../mvcc/store.ts';
import type { Message } from '../raft/index.ts';
import { BoltRaftStorage } from './bolt-raft-storage.ts';
import { copyChunks, copyToBytes } from './db-copy.ts';
import { ReplicationError } from './errors.ts';
import type { MemberOptions } from './member-options.ts';
import { MembersStore } from './members.ts';
import { RaftBackend } from './raft-backend.ts';
import { SnapshotInbox } from './snapshot-inbox.ts';

/** Opens the file into its parts; `reuse` reloads an existing raft storage mirror (snapshot install). */
export async function openParts(
  opts: MemberOptions,
  reuse?: BoltRaftStorage,
): Promise<{ backend: RaftBackend; storage: BoltRaftStorage; store: MvccStore; members: MembersStore }> {
  const bolt = BoltBackend.open(opts.path, {
    ...opts.bolt,
    fileSystem: opts.fileSystem ?? opts.bolt?.fileSystem ?? nodeFileSystem,
  });
  const backend = new RaftBackend(bolt);
  try {
    const storage = reuse !== undefined ? reuse.reload(backend) : BoltRaftStorage.load(backend);
    const members = backend.view((r) => MembersStore.load(r));
    const store = MvccStore.open({
      backend,
      autoExpireLeases: false,
      leaseCheckIntervalMs: 0,
      ...(opts.now !== undefined ? { now: opts.now } : {}),
      ...(opts.compactionBatchIntervalMs !== undefined
        ? { compactionBatchIntervalMs: opts.compactionBatchIntervalMs }
        : {}),
    });
    return { backend, storage, store, members };
  } catch (err) {
    bolt.close();
    throw err;
  }
}

function boltOf(backend: RaftBackend): BoltBackend {
  if (!(backend.inner instanceof BoltBackend))
    throw new ReplicationError('ERR_INVALID_ARGUMENT', 'snapshots need a bolt backend');
  return backend.inner;
}

/** The consistent copy of the file a lagging peer is sent, in chunks, from one read transaction. */
export function fileChunks(backend: RaftBackend): Generator<Uint8Array, void, undefined> {
  const tx = boltOf(backend).db.begin(false);
  return (function* () {
    try {
      yield* copyChunks(tx);
    } finally {
      tx.rollback();
    }
  })();
}

/** The same copy in one buffer (in-process transports, small files). */
export function fileBytes(backend: RaftBackend): Uint8Array {
  const tx = boltOf(backend).db.begin(false);
  try {
    return copyToBytes(tx);
  } finally {
    tx.rollback();
  }
}

/**
 * Snapshot files streamed by a transport: each is written beside the member's file as it arrives
 * (never whole in memory), to a file of its own (snapshot-inbox.ts), and synced before its snap
 * message is stepped; the install then renames it into place. One reception at a time; one of a
 * snapshot raft already holds (`stale`) is not written at all.
 */
export class ReceivedSnapshots {
  private readonly inbox: SnapshotInbox;
  private chain: Promise<void> = Promise.resolve();

  constructor(path: string, fs: FileSystem) {
    this.inbox = new SnapshotInbox(fs, path);
  }

  receive(
    m: Message,
    chunks: AsyncIterable<Uint8Array>,
    check: () => void,
    step: (m: Message) => void,
    stale: (index: number) => boolean = () => false,
  ): Promise<void> {
    const run = async (): Promise<void> => {
      check();
      const index = m.snapshot?.metadata.index ?? 0;
      if (m.type !== 'snap' || index === 0)
        throw new ReplicationError('ERR_INVALID_ARGUMENT', 'not a snapshot message');
      if (stale(index)) return;
      await this.inbox.receive(index, chunks);
      step(m);
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }

  /** The file received for the snapshot at `index`; files of older snapshots are deleted. */
  take(index: number): string {
    return this.inbox.take(index);
  }

  /** Deletes received files of snapshots at or below `index` (raft refused them, or has newer). */
  discardUpTo(index: number): void {
    this.inbox.discardUpTo(index);
  }
}
