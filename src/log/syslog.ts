/**
 * Log lines to the local syslog daemon over /dev/log. Node has no unix datagram sockets, so the
 * lines go through util-linux `logger` (one long-lived child reading stdin), each with a
 * `<PRI>` prefix mapped from the pino level.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { onPath } from './rotate.js';

/** Syslog is not available here; the message says what to use instead. */
export class SyslogUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SyslogUnavailableError';
  }
}

/** Options of SyslogStream. */
export interface SyslogOptions {
  /** The syslog socket (default /dev/log). */
  socket?: string;
  /** Program name in each record (default imapkit). */
  tag?: string;
  /** Facility number (default 3, daemon). */
  facility?: number;
}

/** pino level → syslog severity (RFC 5424 6.2.1). */
export function severityOf(level: number): number {
  if (level >= 60) return 2; // fatal → critical
  if (level >= 50) return 3; // error
  if (level >= 40) return 4; // warning
  if (level >= 30) return 6; // info
  return 7; // debug, trace
}

/** A pino destination writing each line to syslog. */
export class SyslogStream {
  private readonly child: ChildProcess;
  private readonly facility: number;

  constructor(opts: SyslogOptions = {}) {
    const socket = opts.socket ?? '/dev/log';
    if (!existsSync(socket)) {
      throw new SyslogUnavailableError(
        `--log syslog: ${socket} does not exist, so no syslog daemon listens here. Use --log stderr (under systemd the journal keeps it) or --log FILE.`,
      );
    }
    if (!onPath('logger')) throw new SyslogUnavailableError('--log syslog needs the `logger` program (util-linux, Debian package bsdutils); use --log FILE instead.');
    this.facility = opts.facility ?? 3;
    this.child = spawn('logger', ['--socket', socket, '--socket-errors=off', '--size', '16384', '--prio-prefix', '--tag', opts.tag ?? 'imapkit', `--id=${process.pid}`], { stdio: ['pipe', 'ignore', 'inherit'] });
    // A vanished logger must not take imapkit down: log lines are then dropped.
    this.child.on('error', () => undefined);
    this.child.stdin?.on('error', () => undefined);
  }

  /** Write one pino line (JSON) with its priority prefix. */
  write(line: string): boolean {
    const m = /"level":(\d+)/.exec(line);
    const pri = this.facility * 8 + severityOf(m ? Number(m[1]) : 30);
    // logger reads one record per line: embedded newlines would split a record.
    const body = line.replace(/\n(?!$)/g, ' ').replace(/\n?$/, '\n');
    this.child.stdin?.write(`<${pri}>${body}`);
    return true;
  }

  /** Close logger's input and wait for it to send what it has. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null) return resolve();
      this.child.once('exit', () => resolve());
      this.child.stdin?.end();
    });
  }
}
