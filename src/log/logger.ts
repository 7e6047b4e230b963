/** The one logger factory: pino to stderr; secrets are redacted by key name wherever they appear. */
import { pino, type Logger } from 'pino';

export type { Logger };

const REDACT = [
  'password',
  'pass',
  'secret',
  'token',
  'accessToken',
  'refreshToken',
  '*.password',
  '*.pass',
  '*.secret',
  '*.token',
  '*.accessToken',
  '*.refreshToken',
];

/** Create a logger; `level` 'debug' enables protocol traces (which callers must scrub themselves). */
export function createLogger(opts: { level?: string; name?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  return pino(
    {
      name: opts.name ?? 'imapkit',
      level: opts.level ?? process.env.IMAPKIT_LOG_LEVEL ?? 'info',
      redact: { paths: REDACT, censor: '[redacted]' },
    },
    (opts.destination as pino.DestinationStream | undefined) ?? pino.destination(2),
  );
}

/** A logger that drops everything (tests, library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
