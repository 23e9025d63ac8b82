/**
 * The forms of a command's authenticator (docs/protocol.md §7), told apart
 * by length. `body` is the transmission after its authenticator
 * (`corrId short ‖ entityId short ‖ command`):
 *
 *   length  form       value                                                              since
 *   0       none       -                                                                  1
 *   64      signature  Ed25519(key, sessionBinding ‖ body)                                1
 *   96      register   Ed25519(key, sessionBinding ‖ MAC_KEY_LABEL ‖ macKey ‖ body) ‖ macKey  5
 *   32      mac        HMAC-SHA256(macKey, sessionBinding ‖ body)                         5
 *
 * `register` is valid wherever a signature is, and also registers `macKey`
 * on the relay for this TLS session, the command's entity ID and its party
 * (recipient or sender); `mac` is valid only under a key so registered.
 * The byte after the 32-byte binding tells the two signed messages apart:
 * a body starts with its corrId length (0..24), the label with 'n' (0x6e).
 */
import { timingSafeEqual } from 'node:crypto';
import { hmacSha256Parts } from '../crypto/kdf.js';
import { SIGNATURE_LENGTH } from '../crypto/keys.js';
import { SESSION_MAC_VERSION } from './version.js';

/** Length of a MAC key and of a MAC (HMAC-SHA256). */
export const MAC_KEY_LENGTH = 32;
export const MAC_LENGTH = 32;
/** A signature followed by the MAC key it registers. */
export const REGISTRATION_LENGTH = SIGNATURE_LENGTH + MAC_KEY_LENGTH;
/** Domain separation of a registering signature from a plain one (and from every other signature in the protocol). */
export const MAC_KEY_LABEL = new TextEncoder().encode('nightjar/mac-key/v1');
/**
 * MAC keys one session may hold, over both parties: a relay keeps at least
 * this many, and a client registers no more (it signs beyond them), so a
 * key the client believes registered always is (docs/protocol.md §12).
 */
export const MAX_MAC_KEYS = 4096;

export type AuthenticatorForm = 'none' | 'signature' | 'register' | 'mac';

/** How a transmission is to be authenticated; `encodeAuthenticatedTransmission` writes it. */
export type Authentication =
  | { readonly form: 'none' }
  | { readonly form: 'signature'; readonly signingKey: Uint8Array }
  | { readonly form: 'register'; readonly signingKey: Uint8Array; readonly macKey: Uint8Array }
  | { readonly form: 'mac'; readonly macKey: Uint8Array };

const FORMS_BEFORE_MACS: ReadonlyMap<number, AuthenticatorForm> = new Map([
  [0, 'none'],
  [SIGNATURE_LENGTH, 'signature'],
]);
const FORMS: ReadonlyMap<number, AuthenticatorForm> = new Map([
  ...FORMS_BEFORE_MACS,
  [REGISTRATION_LENGTH, 'register'],
  [MAC_LENGTH, 'mac'],
]);

/**
 * The form an authenticator of `length` bytes has on a connection of
 * `version`, or undefined when that version has none of that length (a
 * syntax error: versions 1..4 know only 0 and 64).
 *
 * @example
 *   authenticatorForm(32, 5) // 'mac'
 *   authenticatorForm(32, 4) // undefined
 */
export function authenticatorForm(length: number, version: number): AuthenticatorForm | undefined {
  return (version >= SESSION_MAC_VERSION ? FORMS : FORMS_BEFORE_MACS).get(length);
}

/**
 * The bytes a registering (96-byte) authenticator signs:
 * `sessionBinding ‖ MAC_KEY_LABEL ‖ macKey ‖ body`. Used by the relay to
 * verify; the client's encoder lays the same bytes out in place.
 *
 * @example
 *   verify(queueKey, registrationSignedData(binding, macKey, body), signature)
 */
export function registrationSignedData(sessionBinding: Uint8Array, macKey: Uint8Array, body: Uint8Array): Uint8Array {
  if (macKey.length !== MAC_KEY_LENGTH) throw new RangeError(`MAC key must be ${MAC_KEY_LENGTH} bytes`);
  const out = new Uint8Array(sessionBinding.length + MAC_KEY_LABEL.length + MAC_KEY_LENGTH + body.length);
  out.set(sessionBinding, 0);
  out.set(MAC_KEY_LABEL, sessionBinding.length);
  out.set(macKey, sessionBinding.length + MAC_KEY_LABEL.length);
  out.set(body, sessionBinding.length + MAC_KEY_LABEL.length + MAC_KEY_LENGTH);
  return out;
}

/**
 * The 32-byte MAC authenticator: HMAC-SHA256(macKey, sessionBinding ‖ body),
 * computed without joining binding and body.
 *
 * @example
 *   const tag = sessionMac(macKey, binding, body);
 */
export function sessionMac(macKey: Uint8Array, sessionBinding: Uint8Array, body: Uint8Array): Uint8Array {
  return hmacSha256Parts(macKey, [sessionBinding, body]);
}

/**
 * Whether `tag` is the MAC of `body` on this session under `macKey`,
 * compared in constant time; false for a tag of another length.
 *
 * @example
 *   if (!macMatches(macKey, binding, t.signedBody, t.authenticator)) return err('AUTH');
 */
export function macMatches(macKey: Uint8Array, sessionBinding: Uint8Array, body: Uint8Array, tag: Uint8Array): boolean {
  const expected = sessionMac(macKey, sessionBinding, body);
  return tag.length === expected.length && timingSafeEqual(expected, tag);
}
