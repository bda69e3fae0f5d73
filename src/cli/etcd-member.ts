/** etcdctl's member commands: list, add, remove, update and promote. */
import type { Member } from '../client/index.ts';
import { bool, type Parsed, str } from './args.ts';
import type { Command } from './command.ts';
import { usage } from './errors.ts';
import { ETCD_GLOBAL_FLAGS, out, withTarget } from './etcd-target.ts';
import { table, writeOutOf } from './output.ts';

function parseMemberId(s: string | undefined): bigint {
  if (s === undefined) throw usage('member ID is not provided');
  if (!/^[0-9a-fA-F]{1,16}$/.test(s))
    throw usage(
      `bad member ID arg (strconv.ParseUint: parsing ${JSON.stringify(s)}: invalid syntax), expecting ID in Hex`,
    );
  return BigInt(`0x${s}`);
}

function peerURLsOf(p: Parsed): string[] {
  const urls = str(p.flags['peer-urls'])
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u !== '');
  if (urls.length === 0) throw usage('member peer urls not provided');
  for (const u of urls) if (!/^https?:\/\/[^/]+/.test(u)) throw usage(`URL scheme must be http or https: ${u}`);
  return urls;
}

/** etcdctl's %16x: the id in hex, right-aligned in 16 columns. */
const id16 = (id: bigint | undefined): string => (id ?? 0n).toString(16).padStart(16, ' ');

function memberRows(members: readonly Member[]): string[][] {
  return members.map((m) => [
    m.ID.toString(16),
    m.name === '' ? 'unstarted' : 'started',
    m.name,
    m.peerURLs.join(','),
    m.clientURLs.join(','),
    String(m.isLearner),
  ]);
}

export const member: Command = {
  name: 'member',
  summary:
    'member list | add <name> --peer-urls URLS [--learner] | remove <id> | update <id> --peer-urls URLS | promote <id> (etcdctl)',
  usage: 'boltkv member list|add|remove|update|promote --endpoints URLS ... (list also with --data-dir)',
  flags: {
    ...ETCD_GLOBAL_FLAGS,
    'peer-urls': { kind: 'string', default: '', help: 'add, update: comma-separated peer URLs of the member' },
    learner: { kind: 'bool', help: 'add: the new member joins as a learner (promote it once it has caught up)' },
  },
  async run(p, io) {
    const [sub, arg] = p.args;
    const w = writeOutOf(p.flags['write-out']);
    if (sub === 'list') {
      return withTarget(p, async ({ client, endpoint }) => {
        if (!client) {
          // One member, in process: no peer URLs, no id.
          const resp = { header: {}, members: [{ name: 'default', clientURLs: [endpoint] }] };
          return out(p, io, resp, () => [`0, started, default, , ${endpoint}, false`]);
        }
        const r = await client.memberList();
        if (w === 'table')
          return void io.out(
            `${table(['id', 'status', 'name', 'peer addrs', 'client addrs', 'is learner'], memberRows(r.members))}\n`,
          );
        out(p, io, r, () => memberRows(r.members).map((row) => row.join(', ')));
      });
    }
    if (sub !== 'add' && sub !== 'remove' && sub !== 'update' && sub !== 'promote') {
      throw usage('member needs a subcommand: list, add, remove, update or promote');
    }
    if (p.args.length !== 2) {
      throw usage(sub === 'add' ? 'member name not provided' : `member ID is not provided`);
    }
    await withTarget(p, async ({ client }) => {
      if (!client)
        throw usage(`member ${sub} needs --endpoints: a data directory opened here is one member without raft`);
      switch (sub) {
        case 'add': {
          const peerURLs = peerURLsOf(p);
          const learner = bool(p.flags.learner);
          const r = await client.memberAdd({ peerURLs, isLearner: learner });
          if (w !== 'simple') return out(p, io, r, () => []);
          // etcdctl 3.4 says "added" for a learner too.
          const lines = [`Member ${id16(r.member.ID)} added to cluster ${id16(r.header.clusterId)}`, ''];
          // The configuration the new member starts with: every member's name and peer URLs, the new one named as given.
          const list = await client.memberList();
          const conf: string[] = [];
          for (const m of list.members)
            for (const u of m.peerURLs) conf.push(`${m.ID === r.member.ID ? arg : m.name}=${u}`);
          lines.push(
            `ETCD_NAME=${JSON.stringify(arg)}`,
            `ETCD_INITIAL_CLUSTER=${JSON.stringify(conf.join(','))}`,
            `ETCD_INITIAL_ADVERTISE_PEER_URLS=${JSON.stringify(peerURLs.join(','))}`,
            'ETCD_INITIAL_CLUSTER_STATE="existing"',
          );
          return void io.out(`${lines.join('\n')}\n`);
        }
        case 'remove': {
          const id = parseMemberId(arg);
          const r = await client.memberRemove(id);
          return out(p, io, r, () => [`Member ${id16(id)} removed from cluster ${id16(r.header.clusterId)}`]);
        }
        case 'update': {
          const id = parseMemberId(arg);
          const r = await client.memberUpdate(id, peerURLsOf(p));
          return out(p, io, r, () => [`Member ${id16(id)} updated in cluster ${id16(r.header.clusterId)}`]);
        }
        case 'promote': {
          const id = parseMemberId(arg);
          const r = await client.memberPromote(id);
          return out(p, io, r, () => [`Member ${id16(id)} promoted in cluster ${id16(r.header.clusterId)}`]);
        }
      }
    });
  },
};
