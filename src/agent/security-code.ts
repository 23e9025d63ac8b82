/**
 * The security code two people compare to rule out a man in the middle
 * (docs/e2e.md §9.1). Both sides derive it from the connection's key
 * agreement transcript `th` (docs/e2e.md §2.3), which binds every public key
 * exchanged; a man in the middle who replaced the invitation leaves the two
 * sides with different transcripts, so different codes.
 *
 *   bytes = HKDF-SHA256(ikm = th, salt = "", info = "nightjar/security-code/v1", L = 60)
 *   code  = 12 groups of 5 digits: group i = u40(bytes[5i .. 5i+5]) mod 100000
 *
 * 60 digits, ~199 bits: as many as Signal's safety numbers, the same on both
 * sides (nothing to swap), and nothing in it is sent anywhere.
 */
import { hkdf } from '../crypto/kdf.js';

export const SECURITY_CODE_GROUPS = 12;

/** The code as 12 groups of 5 digits, space-separated. */
export function securityCode(transcript: Uint8Array): string {
  const bytes = hkdf(transcript, new Uint8Array(0), 'nightjar/security-code/v1', SECURITY_CODE_GROUPS * 5);
  const groups: string[] = [];
  for (let i = 0; i < SECURITY_CODE_GROUPS; i++) {
    let n = 0;
    for (let j = 0; j < 5; j++) n = n * 256 + bytes[i * 5 + j]!;
    groups.push(String(n % 100_000).padStart(5, '0'));
  }
  return groups.join(' ');
}

/** The digits of a code as a person may type it (spaces, dashes and line breaks ignored), or undefined if it is not 60 digits. */
export function normalizeSecurityCode(typed: string): string | undefined {
  const digits = typed.replace(/[\s-]/g, '');
  if (!/^\d{60}$/.test(digits)) return undefined;
  return digits.match(/\d{5}/g)!.join(' ');
}
