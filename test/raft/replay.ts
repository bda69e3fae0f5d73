/**
 * Replays a counterexample printed by simulation.test.ts, step by step with invariant checks, and
 * prints where it fails plus every node's state. Usage:
 *   node --import tsx --conditions=boltkv-source test/raft/replay.ts counterexample.json
 * where the file holds the JSON array after "Counterexample:" ([shape, ops]).
 */
import { readFileSync } from 'node:fs';
import { applyOp, build, checkLiveness, type Op, type Shape } from './sim-ops.ts';

const file = process.argv[2];
if (!file) {
  console.error('usage: replay.ts <counterexample.json>');
  process.exit(2);
}
const [shape, ops] = JSON.parse(readFileSync(file, 'utf8')) as [Shape, Op[]];
const c = build(shape);
const removed = new Set<number>();
let i = 0;
try {
  for (const op of ops) {
    const before = c.configs();
    applyOp(c, op, removed);
    c.checkInvariants(before);
    i++;
  }
  checkLiveness(c);
  console.log('passed');
} catch (e) {
  console.log(`failed at op ${i}`, ops[i] ?? '(liveness phase)');
  console.log(e);
  for (const n of c.nodes.values()) {
    const st = n.raw?.status();
    console.log(
      n.id,
      st ? { soft: st.softState, hard: st.hardState, config: st.config, applied: n.applied } : 'down',
      `log [${n.storage.firstIndex()}, ${n.storage.lastIndex()}]`,
    );
  }
  process.exitCode = 1;
}
