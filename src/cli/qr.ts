/**
 * A QR code for the terminal, two modules per character cell (▀ ▄ █).
 * On a colour terminal the cells get explicit black/white colours, so the
 * code scans whatever the terminal's theme; without colour it assumes
 * light text on a dark background, like most terminals.
 */
import { encode } from 'uqr';

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
