/**
 * fast-check model test of the six watch guarantees over the fake source (see support/model.ts).
 * Replay a counterexample with WATCH_REPLAY='[actions, maxBuf, chunk]'.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkGuarantees, fakeDriver, newCoverage, runScenario, type Action } from './support/model.ts';

const stress = process.env.BOLTKV_STRESS === '1';

if (process.env.WATCH_REPLAY !== undefined) {
  const [acts, mb, cu] = JSON.parse(process.env.WATCH_REPLAY) as [Action[], number, number];
  await runScenario(acts, mb, cu, fakeDriver(), newCoverage());
}

describe('watch guarantees (fast-check model)', () => {
  it('ordered, unique, reliable, atomic, resumable, bookmarkable, prevKv and filters hold', async () => {
    const seen = await checkGuarantees(fakeDriver, { maxActions: stress ? 200 : 60, numRuns: stress ? 2000 : 150 });
    console.log('watch model coverage', seen);
    assert.ok(seen.delivered > 1000, 'events delivered');
    assert.ok(seen.compacted > 5, 'compacted cancels');
    assert.ok(seen.complete > 100, 'watchers drained to a final bookmark');
    assert.ok(seen.resumes > 50, 'resumes');
    assert.ok(seen.historyReads > 100, 'history catch-up reads');
  });
});
