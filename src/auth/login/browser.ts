/** Opening a URL in the user's browser, quietly: false (never an exception) when it cannot be done. */
import { spawn } from 'node:child_process';

/** The command that opens URLs on this platform, or undefined where no graphical session is seen. */
export function browserCommand(platform: NodeJS.Platform = process.platform, env: NodeJS.ProcessEnv = process.env): string[] | undefined {
  if (platform === 'darwin') return ['open'];
  if (platform === 'win32') return ['cmd', '/c', 'start', '""'];
  // Without a display xdg-open falls back to a text-mode browser that would take over the
  // terminal the user needs for reading our instructions: better to print the URL.
  if (!env.DISPLAY && !env.WAYLAND_DISPLAY) return undefined;
  return ['xdg-open'];
}

/** Try to open `url` in a browser; resolves true when the opener reported success. */
export function openBrowser(url: string, opts: { command?: string[]; timeoutMs?: number } = {}): Promise<boolean> {
  const cmd = opts.command ?? browserCommand();
  if (!cmd || cmd.length === 0) return Promise.resolve(false);
  return new Promise((resolve) => {
    let done = false;
    const finish = (ok: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(ok);
    };
    let child;
    try {
      child = spawn(cmd[0]!, [...cmd.slice(1), url], { stdio: 'ignore', detached: true });
    } catch {
      finish(false);
      return;
    }
    child.once('error', () => finish(false));
    child.once('exit', (code) => finish(code === 0));
    child.unref();
    // Some openers keep running as long as the browser does: still running means it started.
    const timer = setTimeout(() => finish(true), opts.timeoutMs ?? 3000);
    timer.unref();
  });
}
