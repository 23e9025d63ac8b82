/**
 * Puts the parts of device-log events back together (docs/devices.md
 * §9.2). Entries arrive in log order, and the parts of one event may be
 * interleaved with other devices' entries; an event is complete, and
 * takes effect, at the position of the part that completes it.
 *
 * The relay may push an entry twice (a retried append) or drop entries:
 * a repeated part is ignored, and an event whose parts never all arrive
 * is forgotten once MAX_PENDING younger ones wait (a device that lost
 * entries resynchronises anyway, §8). Whole events repeated are the event
 * layer's to drop (each carries its author's sequence number).
 */
import { DeviceLogError, EVENT_ID_LENGTH, MAX_FRAGMENT_LENGTH, type Frame } from './log-entry.js';

export const MAX_PENDING_EVENTS = 32;

export interface AssembledEvent {
  readonly eventId: Uint8Array;
  /** The log position of the part that completed it. */
  readonly position: number;
  readonly bytes: Uint8Array;
}

interface Pending {
  readonly count: number;
  readonly parts: (Uint8Array | undefined)[];
  received: number;
}

export class EventAssembler {
  private readonly pending = new Map<string, Pending>();
  private lastPosition = 0;

  constructor(private readonly maxPending = MAX_PENDING_EVENTS) {}

  /** Whether the event with this ID (hex) waits for more parts. */
  isWaiting(eventIdHex: string): boolean {
    return this.pending.has(eventIdHex);
  }

  /** Events now waiting for more parts. */
  get waiting(): number {
    return this.pending.size;
  }

  /**
   * Takes the frame at `position` (positions strictly increasing); returns
   * the event it completes, if any. A frame that contradicts the earlier
   * parts of its event (another part count) is DeviceLogError MALFORMED,
   * and that event is dropped.
   */
  add(position: number, frame: Frame): AssembledEvent | undefined {
    if (!Number.isSafeInteger(position) || position <= this.lastPosition) {
      throw new RangeError(`log position ${position} is not after ${this.lastPosition}`);
    }
    this.lastPosition = position;
    if (frame.eventId.length !== EVENT_ID_LENGTH) throw new RangeError(`an event ID is ${EVENT_ID_LENGTH} bytes`);
    if (frame.count === 1) return { eventId: Uint8Array.from(frame.eventId), position, bytes: Uint8Array.from(frame.fragment) };
    const id = Buffer.from(frame.eventId).toString('hex');
    let p = this.pending.get(id);
    if (!p) {
      p = { count: frame.count, parts: new Array<Uint8Array | undefined>(frame.count).fill(undefined), received: 0 };
      this.pending.set(id, p);
      this.forgetOldest();
    } else if (p.count !== frame.count) {
      this.pending.delete(id);
      throw new DeviceLogError('MALFORMED', `event ${id.slice(0, 8)}… has parts of ${p.count} and of ${frame.count}`);
    }
    if (p.parts[frame.index]) return undefined; // a part pushed again
    p.parts[frame.index] = Uint8Array.from(frame.fragment);
    p.received += 1;
    if (p.received < p.count) return undefined;
    this.pending.delete(id);
    const length = (p.count - 1) * MAX_FRAGMENT_LENGTH + p.parts[p.count - 1]!.length;
    const bytes = new Uint8Array(length);
    p.parts.forEach((part, i) => bytes.set(part!, i * MAX_FRAGMENT_LENGTH));
    return { eventId: Uint8Array.from(frame.eventId), position, bytes };
  }

  private forgetOldest(): void {
    // Map iteration follows insertion: the first key is the event waiting longest.
    while (this.pending.size > this.maxPending) this.pending.delete(this.pending.keys().next().value!);
  }
}
