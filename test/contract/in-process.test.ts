/** The KV contract against the in-process store (openStore, in memory). */
import { openStore } from '../../src/api/index.ts';
import { kvContract } from './kv-contract.ts';

kvContract('openStore (in process)', async () => {
  const kv = await openStore({ inMemory: true });
  return { kv, dispose: async () => {} };
});
