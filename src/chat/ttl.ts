/** Disappearing-message timers as people type and read them: `30`, `30s`, `5m`, `12h`, `7d`, `off`. */
import { isTtl, MAX_TTL_SECONDS } from './body.js';
import { ChatError } from './errors.js';

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** Parses a timer; `null` means off. Throws ChatError BAD_INPUT. */
export function parseTtl(text: string): number | null {
  const t = text.trim().toLowerCase();
  if (t === 'off' || t === '0') return null;
  const m = /^(\d+)\s*([smhdw]?)$/.exec(t);
  const seconds = m ? Number(m[1]) * UNITS[m[2] || 's']! : NaN;
  if (!isTtl(seconds)) throw new ChatError('BAD_INPUT', `disappearing timer must be "off" or from 1 second to ${MAX_TTL_SECONDS / 86400} days (e.g. 30, 10m, 1h, 7d)`);
  return seconds;
}

/** `formatTtl(90)` → `1m 30s`; `formatTtl(86400)` → `1d`. */
export function formatTtl(seconds: number): string {
  const parts: string[] = [];
  let rest = seconds;
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.join(' ') || '0s';
}
