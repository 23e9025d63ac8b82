/**
 * The MAC keys one client session has registered (protocol version 5,
 * docs/protocol.md §7): held in memory by the connection and gone with it.
 * A key belongs to one party (recipient or sender) of one entity ID and is
 * remembered with the queue key whose signature registered it; it
 * authenticates a command only for that party and entity, and only while
 * the queue still has that key.
 */
import { macMatches, MAC_KEY_LENGTH, MAX_MAC_KEYS } from '../protocol/authenticator.js';
import { randomBytes } from '../crypto/random.js';

/** The two parties whose commands carry authenticators after NEW. */
export type MacParty = 'recipient' | 'sender';

/**
 * One registration: `macKey ‖ queueKey` (the recipient or sender key that
 * signed it) in one 64-byte buffer from Node's pool, about half what two
 * arrays of their own cost per key.
 */
type MacKeyEntry = Buffer;

// A MAC checked when no key is registered is checked under this one, so a
// missing key costs what a wrong one does.
const DUMMY_MAC_KEY = randomBytes(MAC_KEY_LENGTH);

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);

export class SessionMacKeys {
  private readonly entries = new Map<string, MacKeyEntry>();

  constructor(private readonly limit = MAX_MAC_KEYS) {}

  /** Keys held. */
  get size(): number {
    return this.entries.size;
  }

  /**
   * Registers `macKey` for `party` on `entityId`, replacing any key that
   * party registered there before. False, registering nothing, when the
   * session already holds `limit` keys for other entities (a client never
   * asks for more: docs/protocol.md §12).
   */
  register(party: MacParty, entityId: Uint8Array, queueKey: Uint8Array, macKey: Uint8Array): boolean {
    const id = entryId(party, entityId);
    if (!this.entries.has(id) && this.entries.size >= this.limit) return false;
    // A copy: the arguments are views into a received block that must not stay alive for them.
    const entry = Buffer.allocUnsafe(MAC_KEY_LENGTH + queueKey.length);
    entry.set(macKey, 0);
    entry.set(queueKey, MAC_KEY_LENGTH);
    this.entries.set(id, entry);
    return true;
  }

  /**
   * Whether `tag` is the MAC of `body` on this session under the key `party`
   * registered for `entityId` with `queueKey`, the queue's key now. Without
   * such a key the tag is still checked, under a dummy key, and fails.
   */
  verify(party: MacParty, entityId: Uint8Array, queueKey: Uint8Array, binding: Uint8Array, body: Uint8Array, tag: Uint8Array): boolean {
    const entry = this.entries.get(entryId(party, entityId));
    const current = entry !== undefined && sameBytes(entry.subarray(MAC_KEY_LENGTH), queueKey);
    const matches = macMatches(current ? entry.subarray(0, MAC_KEY_LENGTH) : DUMMY_MAC_KEY, binding, body, tag);
    return current && matches;
  }

  clear(): void {
    this.entries.clear();
  }
}

/** Parties apart: a recipient's key is never looked up for a SEND, nor a sender's for a recipient command. */
function entryId(party: MacParty, entityId: Uint8Array): string {
  return `${party === 'recipient' ? 'r' : 's'}${Buffer.from(entityId.buffer, entityId.byteOffset, entityId.length).toString('hex')}`;
}
