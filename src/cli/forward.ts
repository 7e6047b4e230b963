/**
 * `imapkit forward`: forward new mail from source accounts into target accounts (Gmail) as it
 * arrives, for every forward of a config file; `--status` prints how each forward is doing.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { existsSync } from 'node:fs';
import { ConfigError } from '../config/load.js';
import { createLogger } from '../log/logger.js';
import { createLogDestination, parseSize, type LogDestination } from '../log/destination.js';
import { defaultConfigFile, defaultStateDir, loadForwardConfig } from '../forward/config.js';
import { formatStatuses, readStatuses } from '../forward/status.js';
import { runForwards } from '../forward/runner.js';

/** Flags of `imapkit forward`. */
export interface ForwardFlags {
  config?: string;
  status?: boolean;
  idle?: boolean;
  once?: boolean;
  log?: string;
  logMaxSize?: string;
  logMaxFiles?: number;
  debug?: boolean;
  only?: string[];
  json?: boolean;
}

function countArg(v: string): number {
  if (!/^\d+$/.test(v)) throw new InvalidArgumentError('expected a whole number');
  return Number(v);
}

function sizeArg(v: string): string {
  try {
    parseSize(v);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  return v;
}

/** `--status`: print the status of the config's forwards (or of every forward that left a status file). */
export async function printStatus(flags: ForwardFlags): Promise<number> {
  const file = flags.config ?? defaultConfigFile();
  let stateDir = defaultStateDir();
  let names: string[] | undefined;
  if (flags.config || existsSync(file)) {
    const config = await loadForwardConfig(file);
    stateDir = config.stateDir;
    names = config.forwards.map((f) => f.name);
  }
  const statuses = await readStatuses(stateDir, names);
  process.stdout.write(flags.json ? JSON.stringify(statuses, null, 2) + '\n' : formatStatuses(statuses));
  return 0;
}

/** Run the forwards of a config until SIGTERM/SIGINT (or once); resolves to the exit code. */
export async function runForwardCommand(flags: ForwardFlags): Promise<number> {
  const file = flags.config ?? defaultConfigFile();
  let dest: LogDestination;
  try {
    dest = createLogDestination({ log: flags.log ?? 'stderr', maxSize: flags.logMaxSize, maxFiles: flags.logMaxFiles, syslogTag: 'imapkit-forward' });
  } catch (err) {
    console.error(`imapkit forward: ${(err as Error).message}`);
    return 64;
  }
  const log = createLogger({ level: flags.debug ? 'debug' : undefined, name: 'imapkit-forward', destination: dest.stream });
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    log.info({ signal }, 'stopping: finishing the message in hand');
    controller.abort();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    const config = await loadForwardConfig(file);
    if (flags.only?.length) {
      const unknown = flags.only.filter((n) => !config.forwards.some((f) => f.name === n));
      if (unknown.length) throw new ConfigError(`${file}: no forward named ${unknown.join(', ')}`);
      config.forwards = config.forwards.filter((f) => flags.only!.includes(f.name));
    }
    const results = await runForwards(config, {
      log,
      once: flags.once,
      noIdle: flags.idle === false,
      debug: flags.debug,
      signal: controller.signal,
    });
    const failed = results.filter((r) => !r.ok);
    return failed.length ? 1 : 0;
  } catch (err) {
    const msg = (err as Error).message;
    // A person reads this one: plain text on stderr; a log file or syslog also gets the record.
    if (dest.kind !== 'stderr') log.error({ err: msg }, 'imapkit forward cannot start');
    console.error(`imapkit forward: ${msg}`);
    return err instanceof ConfigError ? 78 : 1;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    await dest.close();
  }
}

/** Register `imapkit forward`. */
export function register(program: Command): void {
  program
    .command('forward')
    .description('forward new mail from one account into another (Gmail) as it arrives: IDLE, OAuth2, exactly once')
    .option('--config <file>', `config file (default ${defaultConfigFile().replace(process.env.HOME ?? '\u0000', '~')})`)
    .option('--status', 'print each forward: last message forwarded, lag, last error')
    .option('--json', 'with --status: print JSON')
    .option('--no-idle', 'poll at pollInterval instead of using IDLE')
    .option('--once', 'forward what is waiting, then exit')
    .option('--only <name...>', 'run only these forwards of the config')
    .option('--log <dest>', 'stdout, stderr (default), syslog, or a file path')
    .option('--log-max-size <size>', 'rotate a log file at this size (default 10M)', sizeArg)
    .option('--log-max-files <n>', 'rotated log files kept, compressed (default 5)', countArg)
    .option('--debug', 'debug logging with protocol traces (never passwords or tokens)')
    .action(async (flags: ForwardFlags) => {
      try {
        process.exitCode = flags.status ? await printStatus(flags) : await runForwardCommand(flags);
      } catch (err) {
        console.error(`imapkit forward: ${(err as Error).message}`);
        process.exitCode = err instanceof ConfigError ? 78 : 1;
      }
    });
}
