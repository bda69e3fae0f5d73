/** Child process for serve-command.test.ts: `boltkv serve` with the given flags. */
import { runServe } from '../../src/server/serve-command.ts';

process.exitCode = await runServe(process.argv.slice(2));
