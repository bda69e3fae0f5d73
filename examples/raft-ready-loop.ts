/**
 * A three-node raft cluster in one process, driven the way a real server drives boltkv/raft:
 *   node --import tsx --conditions=boltkv-source examples/raft-ready-loop.ts
 * Each node is a RawNode over a MemoryStorage. The "network" is a queue of encoded messages, as bytes
 * would travel between machines. Logical time advances by tick(); each node's Ready is handled in
 * the documented order: persist, send, apply, advance. The cluster elects a leader and commits a
 * few proposals, and every node applies the same entries in the same order.
 */
import {
  MemoryStorage,
  RawNode,
  decodeConfChange,
  decodeMessage,
  encodeMessage,
  type NodeId,
  type Ready,
} from 'boltkv/raft';

const IDS: NodeId[] = [1, 2, 3];
const enc = new TextEncoder();
const dec = new TextDecoder();

interface Member {
  node: RawNode;
  storage: MemoryStorage;
  applied: string[];
}

// Seeded election timeouts, so every run tells the same story.
function seeded(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
}

const members = new Map<NodeId, Member>();
for (const id of IDS) {
  const storage = new MemoryStorage();
  // Bootstrap: every node starts from the same snapshot naming the three voters.
  storage.applySnapshot({
    data: new Uint8Array(),
    metadata: { index: 1, term: 1, confState: { voters: IDS, learners: [] } },
  });
  const node = new RawNode({
    id,
    storage,
    electionTick: 10,
    heartbeatTick: 1,
    preVote: true,
    checkQuorum: true,
    random: seeded(id),
  });
  members.set(id, { node, storage, applied: [] });
}

const network: { to: NodeId; bytes: Uint8Array }[] = [];

/** One pass of a node's ready loop. */
function handleReady(id: NodeId, m: Member): boolean {
  if (!m.node.hasReady()) return false;
  const rd: Ready = m.node.ready();
  // 1. Persist (a real node writes and, when rd.mustSync, fsyncs here before sending).
  if (rd.snapshot) m.storage.applySnapshot(rd.snapshot);
  m.storage.append(rd.entries);
  if (rd.hardState) m.storage.setHardState(rd.hardState);
  if (rd.softState?.raftState === 'leader')
    console.log(`node ${id} is leader (term ${m.node.status().hardState.term})`);
  // 2. Send.
  for (const msg of rd.messages) network.push({ to: msg.to, bytes: encodeMessage(msg) });
  // 3. Apply committed entries to the state machine (here: a list of strings).
  for (const e of rd.committedEntries) {
    if (e.type === 'confChange') m.node.applyConfChange(decodeConfChange(e.data));
    else if (e.data.length > 0) m.applied.push(dec.decode(e.data));
  }
  // 4. Advance.
  m.node.advance(rd);
  return true;
}

/** Deliver every queued message and handle every Ready until the cluster is quiet. */
function settle(): void {
  for (let busy = true; busy; ) {
    busy = false;
    for (const [id, m] of members) busy = handleReady(id, m) || busy;
    for (const { to, bytes } of network.splice(0)) {
      members.get(to)?.node.step(decodeMessage(bytes));
      busy = true;
    }
  }
}

function leader(): NodeId | undefined {
  for (const [id, m] of members) if (m.node.status().softState.raftState === 'leader') return id;
  return undefined;
}

// Tick until some node's election timeout fires and it wins the election.
let ticks = 0;
while (leader() === undefined) {
  if (++ticks > 1000) throw new Error('no leader after 1000 ticks');
  for (const m of members.values()) m.node.tick();
  settle();
}
const lead = leader()!;
console.log(`leader elected after ${ticks} ticks: node ${lead}`);

// Propose through the leader and through a follower (which forwards to the leader). Each one settles
// before the next, so the log order is the order proposed here.
const follower = IDS.find((id) => id !== lead)!;
const proposals = ['set x=1', 'set y=2', 'set x=3'];
proposals.forEach((p, i) => {
  members.get(i === 1 ? follower : lead)!.node.propose(enc.encode(p));
  settle();
});
// One heartbeat round tells the followers the final commit index.
for (let i = 0; i < 2; i++) {
  for (const m of members.values()) m.node.tick();
  settle();
}

for (const [id, m] of members) {
  const st = m.node.status();
  console.log(
    `node ${id}: ${st.softState.raftState}, commit ${st.hardState.commit}, applied [${m.applied.join(', ')}]`,
  );
}
const agreed = IDS.every((id) => JSON.stringify(members.get(id)!.applied) === JSON.stringify(proposals));
if (!agreed) {
  console.error('the nodes did not apply the same entries');
  process.exit(1);
}
console.log(`all ${IDS.length} nodes applied the ${proposals.length} proposals in order`);
