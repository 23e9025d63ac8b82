/**
 * A QR code for the terminal, two modules per character cell (▀ ▄ █).
 * On a colour terminal the cells get explicit black/white colours, so the
 * code scans whatever the terminal's theme; without colour it assumes
 * light text on a dark background, like most terminals.
 */
import { encode } from 'uqr';
import { style } from './output.js';

export function terminalQr(text: string, colour: boolean): string {
  const { data } = encode(text, { ecc: 'L', border: 2 });
  const dark = (y: number, x: number): boolean => data[y]?.[x] ?? false;
  const lines: string[] = [];
  for (let y = 0; y < data.length; y += 2) {
    let line = '';
    for (let x = 0; x < data.length; x++) {
      const top = dark(y, x);
      const bottom = y + 1 < data.length ? dark(y + 1, x) : false;
      if (colour) line += `\u001b[${top ? 30 : 97};${bottom ? 40 : 107}m▀`;
      else line += top ? (bottom ? ' ' : '▄') : bottom ? '▀' : '█';
    }
    lines.push(colour ? line + '\u001b[0m' : line);
  }
  return lines.join('\n');
}

/** Columns and rows a printed QR code takes on the screen (its colour codes take none). */
export function qrSize(qr: string): { width: number; height: number } {
  const lines = qr.split('\n');
  return { width: [...lines[0]!.replace(/\u001b\[[0-9;]*m/g, '')].length, height: lines.length };
}

const colour = (): boolean => process.stdout.isTTY === true && (process.env['NO_COLOR'] ?? '') === '';

/** The QR code lines to print before a link (none with --json or --no-qr, a note if the terminal is too small). */
export function qrLines(link: string, flags: { json?: boolean; qr?: boolean }): string[] {
  if (flags.json || flags.qr === false) return [];
  const qr = terminalQr(link, colour());
  const { width, height } = qrSize(qr);
  // A terminal that does not report its size (0) is taken as large enough.
  const columns = process.stdout.isTTY ? process.stdout.columns || undefined : undefined;
  const rows = process.stdout.isTTY ? process.stdout.rows || undefined : undefined;
  if ((columns !== undefined && width > columns) || (rows !== undefined && height > rows)) {
    return [style.dim(`(enlarge the terminal to ${width}×${height} to see the QR code)`)];
  }
  return [qr, ''];
}

