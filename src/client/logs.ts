/**
 * Logs on the client side (docs/protocol.md §9.15): where each log this
 * client reads stands, what a pushed entry must be to be delivered, and
 * what a relay without version 6 answers. The RelayClient sends the
 * commands; this keeps the positions.
 *
 * Positions are JavaScript numbers here: the wire's u64, but no log
 * reaches 2^53 entries (the relay counts positions above that as 2^53 - 1
 * too), so a safe integer holds every position a relay can push, and a
 * push of anything else is an error.
 */
import { CryptoError } from '../crypto/errors.js';
import type { Command, Response } from '../protocol/commands.js';
import { openMessage } from '../protocol/queue-crypto.js';
import { ConnectionError, PushError, RelayError } from './errors.js';
import type { RecipientQueue } from './queues.js';

/** An entry of a log, as `subscribeLog` delivers it: opened with the queue key. */
export interface LogEntry {
  /** Its place in the log: 1 for the first entry, then each next integer; never reused. */
  readonly position: number;
  /** The relay's random ID of the entry (its nonce under the queue key). */
  readonly entryId: Uint8Array;
  /** Seconds since the epoch at which the relay accepted it. */
  readonly timestamp: number;
  readonly flags: number;
  readonly body: Uint8Array;
}

/** Called with each entry, in position order, synchronously as its push is read. */
export type LogEntryHandler = (entry: LogEntry) => void;

type Lent = Extract<Response, { type: 'LENT' }>;

/**
 * Throws RangeError unless `position` is a log position the client sends:
 * a safe integer from 1.
 *
 * @example
 *   checkLogPosition(fromPosition, 'fromPosition'); // before an LSUB is sent
 */
export function checkLogPosition(position: number, what: string): void {
  if (!Number.isSafeInteger(position) || position < 1) throw new RangeError(`${what} must be a safe integer from 1, got ${position}`);
}

/**
 * Runs a log command and turns the relay's refusal of an unknown one into
 * ConnectionError VERSION: LSUB and LTRIM are CMD_UNKNOWN before version 6,
 * and NEW of a log CMD_SYNTAX (an unknown queue mode; so only a NEW of a log
 * may be run through this). The client does not
 * send them to a connection it knows to be older; this covers a relay that
 * was replaced by an older one while the command waited for the
 * connection.
 *
 * @example
 *   const r = await requiringLogs(() => client.request(queue.recipientId, { type: 'LTRIM', position: 5n }));
 */
export async function requiringLogs<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    const older = e instanceof RelayError && (e.code === 'CMD_UNKNOWN' ? e.command === 'LSUB' || e.command === 'LTRIM' : e.code === 'CMD_SYNTAX' && e.command === 'NEW');
    if (older) throw new ConnectionError('VERSION', (e as RelayError).relay, `relay does not speak logs (protocol version 6): ${(e as RelayError).command} refused with ${(e as RelayError).code}`);
    throw e;
  }
}

/** One log this client reads. */
interface LogReader {
  readonly queue: RecipientQueue;
  readonly onEntry: LogEntryHandler;
  /** The position after the last entry delivered: where the next LSUB starts. */
  next: number;
  /** The last position pushed on the current subscription, delivered or not: a push must be above it. */
  last: number;
  /** Counts the LSUBs sent for this reader; pushes count once the latest one's OK has arrived. */
  sent: number;
  /** The LSUB whose OK arrived last (0: none yet). */
  answered: number;
}

/** An LSUB to send, what to call, synchronously, with its answer, and what to do if the relay refuses it. */
export interface LogSubscribe {
  /** The log it subscribes. */
  readonly queue: RecipientQueue;
  readonly command: Command;
  readonly onAnswer: (answer: Response) => void;
  /** Stops reading the log, unless a later `start` replaced this reading meanwhile. */
  readonly refused: () => void;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** The logs one RelayClient reads, by recipient ID. */
export class LogReaders {
  private readonly readers = new Map<string, LogReader>();

  /** `relay`: the address text, for errors. */
  constructor(private readonly relay: string) {}

  get size(): number {
    return this.readers.size;
  }

  has(queue: RecipientQueue): boolean {
    return this.readers.has(hex(queue.recipientId));
  }

  /** The recipient IDs (hex) of the logs read now. */
  keys(): string[] {
    return [...this.readers.keys()];
  }


  /**
   * Starts reading `queue` from position `from` with `onEntry`, replacing
   * any earlier reading of it: the LSUB to send. Pushes before its OK
   * belong to the subscription it replaces and are not delivered.
   */
  start(queue: RecipientQueue, from: number, onEntry: LogEntryHandler): LogSubscribe {
    const reader: LogReader = { queue, onEntry, next: from, last: from - 1, sent: 0, answered: 0 };
    this.readers.set(hex(queue.recipientId), reader);
    return this.subscribe(reader);
  }

  /** The LSUB that resumes the log `key` on a new connection: from the position after the last entry delivered. */
  resume(key: string): LogSubscribe | undefined {
    const reader = this.readers.get(key);
    return reader && this.subscribe(reader);
  }

  private subscribe(reader: LogReader): LogSubscribe {
    const sent = ++reader.sent;
    const from = reader.next;
    const key = hex(reader.queue.recipientId);
    return {
      queue: reader.queue,
      refused: () => {
        if (this.readers.get(key) === reader) this.readers.delete(key);
      },
      command: { type: 'LSUB', position: BigInt(from) },
      onAnswer: (answer) => {
        // An OK for an LSUB that a later one overtook changes nothing: the later one's OK decides.
        if (answer.type !== 'OK' || reader.sent !== sent) return;
        reader.answered = sent;
        reader.last = from - 1;
      },
    };
  }

  /** Stops reading the log `key` (hex recipient ID). */
  forget(key: string): void {
    this.readers.delete(key);
  }

  /**
   * A LENT pushed for `entityId`. Delivers its entry to the log's handler
   * if it is due: at a position above the last one pushed on this
   * subscription, and opening under the queue key. Returns the log and an
   * error when the relay pushed something else (the entry is not
   * delivered), undefined otherwise, and also for a log not read here or
   * a push of a subscription already replaced.
   */
  receive(entityId: Uint8Array, push: Lent): { queue: RecipientQueue; error: Error } | undefined {
    const reader = this.readers.get(hex(entityId));
    if (!reader || reader.answered !== reader.sent) return undefined;
    const { queue } = reader;
    const position = push.position;
    if (position > BigInt(Number.MAX_SAFE_INTEGER) || Number(position) <= reader.last) {
      return { queue, error: new PushError(this.relay, `log entry pushed at position ${position}, not above the previous one (${reader.last}) or beyond 2^53 - 1`) };
    }
    reader.last = Number(position);
    let opened;
    try {
      opened = openMessage(queue.queueKey, push.entryId, push.sealed);
    } catch (e) {
      if (e instanceof CryptoError) return { queue, error: e };
      throw e;
    }
    reader.next = reader.last + 1;
    // The ID is copied: a view would keep the whole received block alive.
    reader.onEntry({ position: reader.last, entryId: new Uint8Array(push.entryId), ...opened });
    return undefined;
  }
}
