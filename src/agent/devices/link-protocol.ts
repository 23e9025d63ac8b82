/**
 * What two devices of one person say to each other while one links the
 * other (docs/devices.md §6, §9.6). They talk over an ordinary agent
 * connection of their own (a link agent on a database apart from the
 * profile), made from a device link: an invitation link under its own
 * prefix, so that it is never taken for a contact's invitation.
 *
 *   message = version u8 (1) | type u8 | fields
 *   JOIN  (1)  the new device's connection info: name short | history u32 (days; 0 none, 0xffffffff all)
 *              [| dhPublic (32) | kemPublic (1184)]: its keys for a removal to seal to (§7); absent from older devices
 *   HELLO (2)  the existing device's connection info: nothing more
 *   OFFER (3)  group | resumeFrom u64 | chunkCount u32 | totalLength u64
 *   CHUNK (4)  index u32 | bytes (rest)
 *   DONE  (5)  the new device has the profile: nothing more
 *   group: group-codec.ts
 */
import { Reader, Writer } from '../../protocol/codec.js';
import { ProtocolError } from '../../protocol/errors.js';
import { AgentError } from '../agent-api.js';
import type { SealRecipient } from '../../crypto/hybrid-seal.js';
import { KEM_PUBLIC_KEY_LENGTH } from '../../crypto/kem.js';
import { KEY_LENGTH } from '../../crypto/keys.js';
import type { DeviceGroupRow } from './device-store.js';
import { readGroup, writeGroup } from './group-codec.js';

export const LINK_PROTOCOL_VERSION = 1;

/** How much history a new device asks for, in days (docs/devices.md §6). */
export const HISTORY_ALL = 0xffff_ffff;
export const HISTORY_NONE = 0;

export const DEVICE_LINK_PREFIX = 'nightjar:device#';
const INVITATION_PREFIX = 'nightjar:invite#';

export type LinkMessage =
  | { readonly type: 'JOIN'; readonly name: string; readonly historyDays: number; readonly keys?: SealRecipient }
  | { readonly type: 'HELLO' }
  | { readonly type: 'OFFER'; readonly group: DeviceGroupRow; readonly resumeFrom: number; readonly chunkCount: number; readonly totalLength: number }
  | { readonly type: 'CHUNK'; readonly index: number; readonly bytes: Uint8Array }
  | { readonly type: 'DONE' };

const TYPES = { JOIN: 1, HELLO: 2, OFFER: 3, CHUNK: 4, DONE: 5 } as const;
const TYPE_NAMES = new Map<number, LinkMessage['type']>(Object.entries(TYPES).map(([name, n]) => [n, name as LinkMessage['type']]));

export class LinkProtocolError extends Error {
  override readonly name = 'LinkProtocolError';
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

export function encodeLinkMessage(m: LinkMessage): Uint8Array {
  const w = new Writer().u8(LINK_PROTOCOL_VERSION).u8(TYPES[m.type]);
  switch (m.type) {
    case 'JOIN':
      w.short(utf8.encode(m.name)).u32(m.historyDays);
      if (m.keys) w.bytes(m.keys.dhPublic).bytes(m.keys.kemPublic);
      return w.finish();
    case 'OFFER':
      return writeGroup(w, m.group).u64(BigInt(m.resumeFrom)).u32(m.chunkCount).u64(BigInt(m.totalLength)).finish();
    case 'CHUNK':
      return w.u32(m.index).bytes(m.bytes).finish();
    case 'HELLO':
    case 'DONE':
      return w.finish();
  }
}

/** LinkProtocolError for anything that is not a link message of this version. */
export function decodeLinkMessage(body: Uint8Array): LinkMessage {
  try {
    const r = new Reader(body);
    const version = r.u8('version');
    if (version !== LINK_PROTOCOL_VERSION) throw new LinkProtocolError(`link protocol version ${version}: the other device runs ${version > LINK_PROTOCOL_VERSION ? 'a newer' : 'an unknown'} Nightjar`);
    const type = TYPE_NAMES.get(r.u8('type'));
    let m: LinkMessage;
    switch (type) {
      case 'JOIN': {
        const name = fromUtf8.decode(r.short('name'));
        const historyDays = r.u32('history');
        // An older device sends no keys: it can be linked, and a removal then has nothing to seal to it (docs/devices.md §7).
        const keys = r.remaining === 0 ? undefined : { dhPublic: Uint8Array.from(r.bytesN(KEY_LENGTH, 'X25519 key')), kemPublic: Uint8Array.from(r.bytesN(KEM_PUBLIC_KEY_LENGTH, 'ML-KEM key')) };
        m = { type, name, historyDays, ...(keys ? { keys } : {}) };
        break;
      }
      case 'OFFER': {
        const group: DeviceGroupRow = readGroup(r);
        m = { type, group, resumeFrom: Number(r.u64('resume from')), chunkCount: r.u32('chunk count'), totalLength: Number(r.u64('total length')) };
        if (group.device === 0 || !Number.isSafeInteger(m.resumeFrom) || m.resumeFrom < 1 || !Number.isSafeInteger(m.totalLength)) throw new LinkProtocolError('a malformed offer');
        break;
      }
      case 'CHUNK':
        m = { type, index: r.u32('index'), bytes: r.rest() };
        break;
      case 'HELLO':
      case 'DONE':
        m = { type };
        break;
      default:
        throw new LinkProtocolError('a link message of an unknown type');
    }
    r.end('link message');
    return m;
  } catch (e) {
    if (e instanceof LinkProtocolError) throw e;
    if (e instanceof ProtocolError || e instanceof TypeError) throw new LinkProtocolError(`a malformed link message: ${(e as Error).message}`, { cause: e });
    throw e;
  }
}

/** The device link for an invitation link the link agent made. */
export function deviceLinkOf(invitationLink: string): string {
  if (!invitationLink.startsWith(INVITATION_PREFIX)) throw new RangeError('not an invitation link');
  return DEVICE_LINK_PREFIX + invitationLink.slice(INVITATION_PREFIX.length);
}

/** The invitation link inside a device link; AgentError BAD_LINK for anything else. */
export function invitationOfDeviceLink(deviceLink: string): string {
  const text = deviceLink.trim();
  if (text.startsWith(INVITATION_PREFIX)) throw new AgentError('BAD_LINK', 'this is an invitation to talk to someone, not a device link: use it with nightjar connect');
  if (!text.startsWith(DEVICE_LINK_PREFIX) || text.length === DEVICE_LINK_PREFIX.length) {
    throw new AgentError('BAD_LINK', `this is not a device link (they start with ${DEVICE_LINK_PREFIX}; make one with: nightjar devices link)`);
  }
  return INVITATION_PREFIX + text.slice(DEVICE_LINK_PREFIX.length);
}

/** The part of a connection's security code both devices show while linking: its first two groups (10 digits). */
export function linkVerificationCode(securityCode: string): string {
  return securityCode.split(' ').slice(0, 2).join(' ');
}

/** `--history`: `all`, `none`, or a number of days (`30d`, `30`); undefined for anything else. */
export function parseHistory(text: string): number | undefined {
  const t = text.trim().toLowerCase();
  if (t === 'all') return HISTORY_ALL;
  if (t === 'none') return HISTORY_NONE;
  const m = /^(\d{1,5})d?$/.exec(t);
  return m ? Number(m[1]) : undefined;
}
