/**
 * Relay protocol versions. Each feature that changes the wire gets a named
 * constant; the history says when and why.
 *
 * History:
 * - 1 (2026-11-25): initial protocol: fixed 16 KiB blocks, batched
 *   transmissions, Ed25519-authorised queue commands bound to the TLS
 *   exporter, per-queue re-encryption of delivered messages.
 * - 2 (2026-11-25): private routing: the relay hello carries a routing key
 *   certified by the relay's TLS key; PRXY, PFWD and RFWD forward sealed
 *   commands through other relays (PKEY, PRES, RRES answer them); error
 *   code PROXY. Version 1 connections keep working without them.
 * - 3 (2026-11-27): link data for short links: LSET stores a queue's link
 *   data under a link ID, LGET (directly or through private routing) fetches
 *   it, answered with LNK. Version 1 and 2 connections keep working without
 *   them.
 * - 4 (2026-11-28): push window: SUB may carry a window, the number of
 *   pushed messages a subscription keeps unacknowledged at once (1..32);
 *   ACK then names any of them. Bare SUB, and every SUB on an earlier
 *   version, is a window of 1, exactly as before.
 * - 5 (2026-11-28): per-session MAC keys: besides the 64-byte signature, an
 *   authenticator may be a 96-byte signature that also registers a MAC key
 *   for its queue and party on this TLS session, and then a 32-byte
 *   HMAC-SHA256 under that key. Version 1..4 connections keep exactly the
 *   authenticators they had (0 or 64 bytes).
 * - 6 (2026-11-29): log queues: NEW may create a log (queue mode 2), an
 *   append-only sequence of entries that any number of readers holding its
 *   recipient key read, each from its own position (LSUB, pushed as LENT),
 *   and that its owner trims (LTRIM). Version 1..5 connections see neither
 *   the mode nor the commands.
 */
export const INITIAL_VERSION = 1;
export const PRIVATE_ROUTING_VERSION = 2;
export const LINK_DATA_VERSION = 3;
export const PUSH_WINDOW_VERSION = 4;
export const SESSION_MAC_VERSION = 5;
export const LOG_QUEUE_VERSION = 6;

/** The range this implementation speaks. */
export const MIN_VERSION = INITIAL_VERSION;
export const CURRENT_VERSION = LOG_QUEUE_VERSION;

export interface VersionRange {
  readonly min: number;
  readonly max: number;
}

export const SUPPORTED_VERSIONS: VersionRange = { min: MIN_VERSION, max: CURRENT_VERSION };

/** The highest version in both ranges, or undefined when they do not overlap. */
export function negotiateVersion(ours: VersionRange, theirs: VersionRange): number | undefined {
  const v = Math.min(ours.max, theirs.max);
  return v >= Math.max(ours.min, theirs.min) ? v : undefined;
}
