/** etcdctl's lease commands: grant, revoke, timetolive, list and keep-alive. */
import { bool } from './args.ts';
import type { Command } from './command.ts';
import { usage } from './errors.ts';
import { parseLease } from './etcd-syntax.ts';
import { ETCD_GLOBAL_FLAGS, out, withKV } from './etcd-target.ts';

const leaseHex = (id: bigint): string => id.toString(16);

export const lease: Command = {
  name: 'lease',
  summary: 'lease grant <ttl> | revoke <id> | timetolive <id> [--keys] | list | keep-alive --once <id> (etcdctl)',
  usage: 'boltkv lease grant|revoke|timetolive|list|keep-alive --data-dir DIR ...',
  flags: {
    ...ETCD_GLOBAL_FLAGS,
    keys: { kind: 'bool', help: 'timetolive: list the attached keys' },
    once: { kind: 'bool', help: 'keep-alive: renew once and exit (required in process)' },
  },
  async run(p, io) {
    const [sub, arg] = p.args;
    await withKV(p, async (kv) => {
      switch (sub) {
        case 'grant': {
          if (arg === undefined || !/^\d+$/.test(arg)) throw usage('lease grant needs TTL argument');
          const r = await kv.leaseGrant({ TTL: Number(arg) });
          return out(p, io, r, () => [`lease ${leaseHex(r.ID)} granted with TTL(${r.TTL}s)`]);
        }
        case 'revoke': {
          if (arg === undefined) throw usage('lease revoke needs 1 argument');
          const id = parseLease(arg);
          const r = await kv.leaseRevoke({ ID: id });
          return out(p, io, r, () => [`lease ${leaseHex(id)} revoked`]);
        }
        case 'timetolive': {
          if (arg === undefined) throw usage('lease timetolive needs lease ID as argument');
          const id = parseLease(arg);
          const r = await kv.leaseTimeToLive({ ID: id, keys: bool(p.flags.keys) });
          return out(p, io, r, () => {
            if (r.TTL === -1) return [`lease ${leaseHex(id)} already expired`];
            const base = `lease ${leaseHex(id)} granted with TTL(${r.grantedTTL}s), remaining(${r.TTL}s)`;
            return [
              bool(p.flags.keys)
                ? `${base}, attached keys([${r.keys.map((k) => Buffer.from(k).toString()).join(' ')}])`
                : base,
            ];
          });
        }
        case 'list': {
          const r = await kv.leaseLeases();
          return out(p, io, r, () => [`found ${r.leases.length} leases`, ...r.leases.map((l) => leaseHex(l.ID))]);
        }
        case 'keep-alive': {
          if (arg === undefined) throw usage('lease keep-alive needs lease ID as argument');
          if (!bool(p.flags.once)) throw usage('in process, lease keep-alive needs --once');
          const id = parseLease(arg);
          const r = await kv.leaseKeepAlive({ ID: id });
          return out(p, io, r, () => [`lease ${leaseHex(id)} keepalived with TTL(${r.TTL})`]);
        }
        default:
          throw usage('lease needs a subcommand: grant, revoke, timetolive, list or keep-alive');
      }
    });
  },
};
