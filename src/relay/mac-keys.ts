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
 * signed it) as a 64-character latin1 string. A subscribing client
 * registers a key per queue, so this is memory per subscribed queue: a
 * string (and a latin1 map key) costs about 165 bytes of heap, where a
 * pair of Uint8Arrays under a hex key cost about 600.
 */
type MacKeyEntry = string;

// A MAC checked when no key is registered is checked under this one, so a
// missing key costs what a wrong one does.
const DUMMY_MAC_KEY = randomBytes(MAC_KEY_LENGTH);

const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1');

/** `head ‖ tail` as one flat latin1 string (a `+` of two would keep a cons string and both parts). */
function joined(head: Uint8Array, tail: Uint8Array): string {
  const b = Buffer.allocUnsafe(head.length + tail.length);
  b.set(head, 0);
  b.set(tail, head.length);
  return b.toString('latin1');
}

const PARTY_BYTE = { recipient: Uint8Array.of(0x72), sender: Uint8Array.of(0x73) } as const; // 'r', 's'

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
    // The string copies the bytes: no view keeps the received 16 KiB block alive.
    this.entries.set(id, joined(macKey, queueKey));
    return true;
  }

  /**
   * Whether `tag` is the MAC of `body` on this session under the key `party`
   * registered for `entityId` with `queueKey`, the queue's key now. Without
   * such a key the tag is still checked, under a dummy key, and fails.
   */
  verify(party: MacParty, entityId: Uint8Array, queueKey: Uint8Array, binding: Uint8Array, body: Uint8Array, tag: Uint8Array): boolean {
    const entry = this.entries.get(entryId(party, entityId));
    const current = entry !== undefined && entry.slice(MAC_KEY_LENGTH) === latin1(queueKey);
    const matches = macMatches(current ? Buffer.from(entry.slice(0, MAC_KEY_LENGTH), 'latin1') : DUMMY_MAC_KEY, binding, body, tag);
    return current && matches;
  }

  clear(): void {
    this.entries.clear();
  }
}

/** Parties apart: a recipient's key is never looked up for a SEND, nor a sender's for a recipient command. */
function entryId(party: MacParty, entityId: Uint8Array): string {
  return joined(PARTY_BYTE[party], entityId);
}
