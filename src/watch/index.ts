/** The watch layer: etcd's watch over any EventSource (normally the revision layer). */
export { WatchHub } from './hub.ts';
export { WatchError, type WatchErrorCode } from './errors.ts';
export type {
  WatchFilter,
  WatchHubOptions,
  WatchKey,
  WatchRequest,
  WatchResponse,
  WatchResponseHeader,
  WatchStream,
  WatchStreamOptions,
  Watcher,
} from './types.ts';
