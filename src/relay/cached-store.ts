/**
 * Queue records kept in memory in front of a QueueStore. Every command
 * looks its queue up (SEND by sender ID, the rest by recipient ID), and
 * with SQLite those two reads were a tenth of the relay's main thread at
 * saturation (docs/performance.md). The records of the most recently used
 * queues are kept; messages, log entries, links and everything else go
 * straight to the store. A log's next position is not part of the record
 * (it changes with every append), so appending and trimming change nothing
 * kept here.
 *
 * Sound only while this process is the one writer of the store (as the
 * relay's SQLite database is, see server.ts): every change to a queue
 * record passes through here and drops the kept copy. A store shared by
 * several processes would need them to tell each other.
 */
import type {
  AddMessageOptions,
  AddMessageResult,
  AppendEntryOptions,
  AppendEntryResult,
  LogEntry,
  NewQueue,
  QueuedMessage,
  QueueRecord,
  QueueStore,
  SecureResult,
  SetLinkResult,
  StoredEntry,
  StoredLink,
  StoredMessage,
  StoreStats,
} from './queue-store.js';

/**
 * Queue records kept at most: the queues with traffic now. About 700 bytes
 * each, so 1,024 of them are under 1 MB; a relay's memory per idle queue
 * is a target of its own (docs/performance.md).
 */
export const DEFAULT_CACHED_QUEUES = 1024;

const keyOf = (id: Uint8Array): string => Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('latin1');

export class CachedQueueStore implements QueueStore {
  /** By recipient ID, least recently used first (a Map keeps insertion order). */
  private readonly byRecipient = new Map<string, QueueRecord>();
  /** Sender ID → recipient ID, for the records kept. */
  private readonly senderToRecipient = new Map<string, string>();
  /**
   * Counts the changes made through here. A read that began before one
   * is not kept: the change may have landed after the store answered it.
   */
  private changes = 0;

  constructor(
    private readonly inner: QueueStore,
    private readonly capacity = DEFAULT_CACHED_QUEUES,
  ) {}

  /** How many queue records are kept now. */
  get size(): number {
    return this.byRecipient.size;
  }

  async byRecipientId(recipientId: Uint8Array): Promise<QueueRecord | undefined> {
    const key = keyOf(recipientId);
    const kept = this.byRecipient.get(key);
    if (kept) return this.touch(key, kept);
    const before = this.changes;
    const record = await this.inner.byRecipientId(recipientId);
    if (record && before === this.changes) this.keep(record);
    return record;
  }

  async bySenderId(senderId: Uint8Array): Promise<QueueRecord | undefined> {
    const recipient = this.senderToRecipient.get(keyOf(senderId));
    const kept = recipient === undefined ? undefined : this.byRecipient.get(recipient);
    if (kept) return this.touch(recipient!, kept);
    const before = this.changes;
    const record = await this.inner.bySenderId(senderId);
    if (record && before === this.changes) this.keep(record);
    return record;
  }

  createQueue(q: NewQueue): Promise<void> {
    return this.inner.createQueue(q);
  }

  secureQueue(recipientId: Uint8Array, senderKey: Uint8Array): Promise<SecureResult> {
    return this.changing(recipientId, () => this.inner.secureQueue(recipientId, senderKey));
  }

  suspendQueue(recipientId: Uint8Array): Promise<boolean> {
    return this.changing(recipientId, () => this.inner.suspendQueue(recipientId));
  }

  deleteQueue(recipientId: Uint8Array): Promise<boolean> {
    return this.changing(recipientId, () => this.inner.deleteQueue(recipientId));
  }

  setLinkData(recipientId: Uint8Array, linkId: Uint8Array, linkData: Uint8Array): Promise<SetLinkResult> {
    return this.inner.setLinkData(recipientId, linkId, linkData);
  }

  linkByLinkId(linkId: Uint8Array): Promise<StoredLink | undefined> {
    return this.inner.linkByLinkId(linkId);
  }

  addMessage(recipientId: Uint8Array, message: StoredMessage, options: AddMessageOptions): Promise<AddMessageResult> {
    // An unsigned send may use up an unsecured queue's one message (unsecuredSendUsed).
    if (options.unsecured) return this.changing(recipientId, () => this.inner.addMessage(recipientId, message, options));
    return this.inner.addMessage(recipientId, message, options);
  }

  peekMessage(recipientId: Uint8Array, notBefore: number): Promise<StoredMessage | undefined> {
    return this.inner.peekMessage(recipientId, notBefore);
  }

  peekMessages(recipientId: Uint8Array, notBefore: number, position: number | undefined, limit: number): Promise<QueuedMessage[]> {
    return this.inner.peekMessages(recipientId, notBefore, position, limit);
  }

  ackMessage(recipientId: Uint8Array, msgId: Uint8Array, notBefore: number): Promise<boolean> {
    return this.inner.ackMessage(recipientId, msgId, notBefore);
  }

  deleteMessage(recipientId: Uint8Array, position: number, msgId: Uint8Array, notBefore: number): Promise<boolean> {
    return this.inner.deleteMessage(recipientId, position, msgId, notBefore);
  }

  appendEntry(recipientId: Uint8Array, entry: StoredEntry, options: AppendEntryOptions): Promise<AppendEntryResult> {
    return this.inner.appendEntry(recipientId, entry, options);
  }

  readEntries(recipientId: Uint8Array, from: number, notBefore: number, limit: number): Promise<LogEntry[]> {
    return this.inner.readEntries(recipientId, from, notBefore, limit);
  }

  trimLog(recipientId: Uint8Array, before: number): Promise<number> {
    return this.inner.trimLog(recipientId, before);
  }

  deleteExpired(notBefore: number): Promise<number> {
    return this.inner.deleteExpired(notBefore);
  }

  stats(): Promise<StoreStats> {
    return this.inner.stats();
  }

  close(): Promise<void> {
    this.forget();
    return this.inner.close();
  }

  /** Drops every kept record. */
  forget(): void {
    this.changes++;
    this.byRecipient.clear();
    this.senderToRecipient.clear();
  }

  /** Runs a change to the queue's record: its kept copy goes before and after (a read may have kept it meanwhile). */
  private async changing<T>(recipientId: Uint8Array, change: () => Promise<T>): Promise<T> {
    const key = keyOf(recipientId);
    this.drop(key);
    try {
      return await change();
    } finally {
      this.changes++;
      this.drop(key);
    }
  }

  private drop(recipientKey: string): void {
    const kept = this.byRecipient.get(recipientKey);
    if (!kept) return;
    this.byRecipient.delete(recipientKey);
    this.senderToRecipient.delete(keyOf(kept.senderId));
  }

  private keep(record: QueueRecord): void {
    const key = keyOf(record.recipientId);
    this.drop(key);
    this.byRecipient.set(key, Object.freeze(record));
    this.senderToRecipient.set(keyOf(record.senderId), key);
    if (this.byRecipient.size > this.capacity) this.drop(this.byRecipient.keys().next().value!);
  }

  /** Marks `record` as the most recently used. */
  private touch(key: string, record: QueueRecord): QueueRecord {
    this.byRecipient.delete(key);
    this.byRecipient.set(key, record);
    return record;
  }
}
