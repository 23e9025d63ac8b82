/**
 * The client's side of per-session MAC keys (protocol version 5,
 * docs/protocol.md §7): for each party and entity on one TLS session, the
 * first signed command registers a fresh random MAC key (the 96-byte
 * authenticator), and once the relay has answered that command as an
 * authorised one, later commands carry a 32-byte MAC instead of a
 * signature. Until then they are signed as before: a MAC is never sent
 * before the relay can have taken its key, whatever order concurrent
 * commands run in there. Kept in memory for one session only; a new
 * session starts with none.
 */
import { MAC_KEY_LENGTH, MAX_MAC_KEYS, type Authentication } from '../protocol/authenticator.js';
import type { ErrorCode } from '../protocol/errors.js';
import type { Response } from '../protocol/commands.js';
import { randomBytes } from '../crypto/random.js';

/** The parties whose commands are authenticated after NEW. */
export type MacParty = 'recipient' | 'sender';

interface MacKeyState {
  readonly macKey: Uint8Array;
  /** The queue key that signed the registration: a command signed by another key is signed, not MACed. */
  readonly signingKey: Uint8Array;
  /** The relay answered the registering command as authorised: the key is registered there. */
  ready: boolean;
}

/**
 * Errors the relay gives only after authorising a command (docs/protocol.md
 * §7), so only after registering its key. Any other error may come before
 * (AUTH, BUSY from the rate limit, ...): the key is then taken as not
 * registered and the next command registers a new one, which replaces it
 * if it was.
 */
const AFTER_AUTHORISATION: ReadonlySet<ErrorCode> = new Set(['NO_MSG', 'QUOTA', 'LARGE_MSG']);

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a === b || Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);

export class ClientMacKeys {
  private readonly keys = new Map<string, MacKeyState>();
  /**
   * Every party and entity this session sent a registration for: the relay
   * holds keys for these at most, so keeping this under MAX_MAC_KEYS keeps
   * the relay's table from ever being full for this client (§12).
   */
  private readonly registered = new Set<string>();

  constructor(private readonly limit = MAX_MAC_KEYS) {}

  /**
   * How to authenticate the next command of `party` on `entityId`, signed by
   * `signingKey`: a MAC once a key is registered, a registration when none
   * is and none is under way (and the session has room), else a signature.
   * A registration must be followed by `settle` with the relay's answer.
   */
  authentication(party: MacParty, entityId: Uint8Array, signingKey: Uint8Array): Authentication {
    const id = entryId(party, entityId);
    const state = this.keys.get(id);
    if (state) {
      return state.ready && sameBytes(state.signingKey, signingKey) ? { form: 'mac', macKey: state.macKey } : { form: 'signature', signingKey };
    }
    if (!this.registered.has(id) && this.registered.size >= this.limit) return { form: 'signature', signingKey };
    const macKey = randomBytes(MAC_KEY_LENGTH);
    this.keys.set(id, { macKey, signingKey, ready: false });
    this.registered.add(id);
    return { form: 'register', signingKey, macKey };
  }

  /**
   * The relay's answer to the command that registered `macKey` (undefined:
   * none came, e.g. a timeout): the key is used from now on if the answer
   * shows the command was authorised, and forgotten otherwise.
   */
  settle(party: MacParty, entityId: Uint8Array, macKey: Uint8Array, answer: Response | undefined): void {
    const id = entryId(party, entityId);
    const state = this.keys.get(id);
    if (!state || state.macKey !== macKey) return;
    const authorised = answer !== undefined && (answer.type !== 'ERR' || AFTER_AUTHORISATION.has(answer.code));
    if (authorised) state.ready = true;
    else this.keys.delete(id);
  }
}

function entryId(party: MacParty, entityId: Uint8Array): string {
  return `${party === 'recipient' ? 'r' : 's'}${Buffer.from(entityId.buffer, entityId.byteOffset, entityId.length).toString('hex')}`;
}
