/** The KV contract against a real etcd 3.4 through connect(). Skips loudly without etcd (fails with BOLTKV_REQUIRE_INTEROP=1). */
import { connect } from '../../src/client/index.ts';
import { etcdAvailable, startEtcd } from '../support/etcd.ts';
import { kvContract } from './kv-contract.ts';

kvContract('connect() to etcd 3.4', async () => {
  if (!etcdAvailable()) {
    if (process.env.BOLTKV_REQUIRE_INTEROP === '1')
      throw new Error('etcd is required (BOLTKV_REQUIRE_INTEROP=1) but `etcd` could not be run');
    console.warn(
      '\n*** SKIPPING the KV contract against etcd: etcd is not installed (apt-get install etcd-server) ***\n',
    );
    return undefined;
  }
  const etcd = await startEtcd();
  const kv = connect({ endpoints: [etcd.url], timeoutMs: 10_000 });
  return { kv, dispose: () => etcd.stop() };
});
