/** Runs the CLI in process with captured output, and (for a few checks) as a real child process. */
import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../../src/cli/main.ts';

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

export async function cli(...argv: string[]): Promise<CliResult> {
  let out = '';
  let err = '';
  const code = await run(argv, { out: (s) => void (out += s), err: (s) => void (err += s), isTTY: false });
  return { code, out, err };
}

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The real binary entry (through tsx), for exit codes and stream behaviour. */
export function cliProcess(argv: string[], input?: string): CliResult {
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--conditions=boltkv-source', resolve(ROOT, 'src/cli/main.ts'), ...argv],
    {
      cwd: ROOT,
      encoding: 'utf8',
      input,
      timeout: 30_000,
    },
  );
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}
