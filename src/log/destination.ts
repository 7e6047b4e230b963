/**
 * Where logs go (`--log stdout|stderr|syslog|FILE`): a pino destination for each, with size-based
 * rotation and compression for files.
 */
import { pino } from 'pino';
import { RotatingFile, parseSize, type Compression } from './rotate.js';
import { SyslogStream } from './syslog.js';

export { parseSize, RotatingFile, onPath, type Compression } from './rotate.js';
export { SyslogStream, SyslogUnavailableError, severityOf } from './syslog.js';

/** Options of createLogDestination, as given on the command line. */
export interface LogDestinationOptions {
  /** stdout, stderr (default), syslog, or a file path. */
  log?: string;
  /** File rotation threshold: bytes or 10M-style text (default 10M). */
  maxSize?: string | number;
  /** Rotated files kept (default 5). */
  maxFiles?: number;
  compression?: Compression;
  /** Syslog socket path (default /dev/log) and tag. */
  syslogSocket?: string;
  syslogTag?: string;
}

/** A log destination: the stream for createLogger, and how to close it. */
export interface LogDestination {
  kind: 'stdout' | 'stderr' | 'syslog' | 'file';
  stream: NodeJS.WritableStream;
  /** Flush and release the destination. */
  close(): Promise<void>;
  /** The rotating file, for `kind === 'file'`. */
  file?: RotatingFile;
}

/** Build the destination named by `--log`. Throws a clear error when it cannot be used. */
export function createLogDestination(opts: LogDestinationOptions = {}): LogDestination {
  const target = opts.log ?? 'stderr';
  if (target === 'stdout' || target === 'stderr' || target === '-') {
    const fd = target === 'stdout' || target === '-' ? 1 : 2;
    const stream = pino.destination({ fd, sync: true });
    return { kind: fd === 1 ? 'stdout' : 'stderr', stream: stream as unknown as NodeJS.WritableStream, close: async () => stream.flushSync() };
  }
  if (target === 'syslog') {
    const s = new SyslogStream({ socket: opts.syslogSocket, tag: opts.syslogTag });
    return { kind: 'syslog', stream: s as unknown as NodeJS.WritableStream, close: () => s.close() };
  }
  const file = new RotatingFile(target, {
    maxSize: parseSize(opts.maxSize ?? '10M'),
    maxFiles: opts.maxFiles ?? 5,
    compression: opts.compression,
  });
  return { kind: 'file', stream: file as unknown as NodeJS.WritableStream, close: () => file.close(), file };
}
