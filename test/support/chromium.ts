import { execFileSync } from 'node:child_process';

/** The Debian chromium that scripts/ensure-tools.sh installs; the test fails, naming it, when it is missing. */
export function findChromium(): string {
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      return execFileSync('which', [name], { encoding: 'utf8' }).trim();
    } catch {
      /* next */
    }
  }
  throw new Error('chromium is not installed: apt-get install -y chromium (bash scripts/ensure-tools.sh does)');
}
