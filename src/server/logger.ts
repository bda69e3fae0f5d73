/**
 * The server's log: one JSON line per event on stderr (etcd 3.4's zap format in spirit:
 * level, ts, msg, fields), filtered by level. Start, stop and errors only; no per-request lines.
 */
import { BoltkvError } from '../errors.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export class ServerOptionError extends BoltkvError {
  declare readonly code: 'ERR_INVALID_OPTION';
  constructor(message: string) {
    super('ERR_INVALID_OPTION', message);
    this.name = 'ServerOptionError';
  }
}

export function isLogLevel(v: unknown): v is LogLevel {
  return typeof v === 'string' && v in ORDER;
}

/** A logger writing JSON lines through `write` (default: stderr) at `level` and above. */
export function createLogger(level: LogLevel, write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  const at =
    (lv: LogLevel) =>
    (msg: string, fields: Record<string, unknown> = {}): void => {
      if (ORDER[lv] < ORDER[level]) return;
      write(
        `${JSON.stringify({ level: lv, ts: new Date().toISOString(), msg, ...fields }, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))}\n`,
      );
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
