/** The KV contract against boltkv's own gateway server (serve() over an in-memory store) through connect(). */
import { openStore } from '../../src/api/index.ts';
import { connect } from '../../src/client/index.ts';
import { createLogger } from '../../src/server/logger.ts';
import { serve } from '../../src/server/serve.ts';
import { kvContract } from './kv-contract.ts';

kvContract('connect() to boltkv serve', async () => {
  const store = await openStore({ inMemory: true });
  const server = await serve({
    kv: store,
    listen: 'http://127.0.0.1:0',
    logger: createLogger('error', () => {}),
    closeKv: true,
  });
  const kv = connect({ endpoints: server.urls, timeoutMs: 10_000 });
  return { kv, dispose: () => server.close() };
});
