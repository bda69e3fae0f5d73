/**
 * boltkv's network face: etcd 3.4's HTTP/JSON gateway served from a boltkv store.
 */
export { serve, DEFAULT_MAX_REQUEST_BYTES, type ServeOptions, type EtcdGatewayServer } from './serve.ts';
export { runServe, serveHelp, type ServeCommandIO } from './serve-command.ts';
export { createLogger, type Logger, type LogLevel, ServerOptionError } from './logger.ts';
export type { ServedKV } from './served-kv.ts';
