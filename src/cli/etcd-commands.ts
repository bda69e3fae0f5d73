/**
 * etcdctl's commands against a store opened in this process (`--data-dir DIR`: the database at
 * DIR/member/snap/db, etcd's layout) or a running server (`--endpoints`: etcd or boltkv serve,
 * through connect()). Same flag names and output as etcdctl 3.4: simple text by default, `-w json`
 * as etcdctl's JSON, `-w table` where etcdctl has one. Both targets implement KV and Maintenance,
 * so each command is written once. One file per etcdctl command group (kv, watch, lease, member,
 * maintenance); this one lists them.
 */
import type { Command } from './command.ts';
import { compaction, del, get, put, txn } from './etcd-kv.ts';
import { lease } from './etcd-lease.ts';
import { alarm, defragEtcd, endpoint, snapshot } from './etcd-maintenance.ts';
import { member } from './etcd-member.ts';
import { watch } from './etcd-watch.ts';

export { parseCompare, parseTxn } from './etcd-syntax.ts';
export { dbPathOf, ETCD_GLOBAL_FLAGS } from './etcd-target.ts';

export const ETCD_COMMANDS: readonly Command[] = [
  get,
  put,
  del,
  txn,
  watch,
  compaction,
  defragEtcd,
  snapshot,
  endpoint,
  alarm,
  lease,
  member,
];

/** Commands that exist only in etcdctl's form. */
export const ETCD_ONLY = new Set([
  'del',
  'put',
  'txn',
  'watch',
  'compaction',
  'snapshot',
  'endpoint',
  'alarm',
  'lease',
  'member',
]);

/** True when argv asks for the etcdctl form of a command (it names a data dir or endpoints). */
export function wantsEtcd(argv: readonly string[]): boolean {
  return argv.some((a) => /^--?(data-dir|endpoints)(=|$)/.test(a));
}
