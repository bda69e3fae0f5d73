/** The KV contract against boltkv's own gateway server (serve() over an in-memory store) through connect(). */
import { openStore } from '../../src/api/index.ts';
import { connect } from '../../src/client/index.ts';
import { createLogger } from '../../src/server/logger.ts';
import { serve } from '../../src/server/serve.ts';
import { kvContract } from './kv-contract.ts';

kvContract('connect() to boltkv serve', async () => {
  const store = await openStore({ inMemory: true });
  const server = await serve({ kv: store, listen: 'http://127.0.0.1:0', logger: createLogger('error', () => {}), closeKv: true });
  const kv = connect({ endpoints: server.urls, timeoutMs: 10_000 });
  return { kv, dispose: () => server.close() };
}, {
  // boltkv serve answers each watch create with an extra header-only response for that watch id
  // (it forwards the store stream's own `created` answer without its flag; etcd 3.4 sends none).
  'watchStream: ids, tagged responses, cancel answer, progress': 'boltkv serve sends an empty per-watch response after created',
  'watchStream: chosen ids, in-stream refusals, a compacted watch holds its id until canceled': 'boltkv serve sends an empty per-watch response after created',
});
