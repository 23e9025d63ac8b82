/**
 * Storage behind the relay. Every backend (SQLite now, PostgreSQL later)
 * implements this interface and passes the shared suite in
 * test/relay/queue-store.test.ts. Methods are async so that a networked
 * backend fits; a method that resolves has made its change durable.
 */
import type { QueueMode } from '../protocol/commands.js';

export type QueueStatus = 'active' | 'suspended';

export interface QueueRecord {
  readonly recipientId: Uint8Array;
  readonly senderId: Uint8Array;
  /** Ed25519 key that signs recipient commands. */
  readonly recipientKey: Uint8Array;
  /** Key of the relay-to-recipient encryption layer. */
  readonly queueKey: Uint8Array;
  /** Ed25519 key that signs SEND once the queue is secured; null before. */
  readonly senderKey: Uint8Array | null;
  readonly status: QueueStatus;
  readonly mode: QueueMode;
  /** Whether the one unsigned message an unsecured queue accepts was used. */
  readonly unsecuredSendUsed: boolean;
}

export interface NewQueue {
  readonly recipientId: Uint8Array;
  readonly senderId: Uint8Array;
  readonly recipientKey: Uint8Array;
  readonly queueKey: Uint8Array;
  readonly mode: QueueMode;
}

export interface StoredMessage {
  readonly msgId: Uint8Array;
  /** The message as the recipient will receive it (sealed under the queue key). */
  readonly sealed: Uint8Array;
  /** Milliseconds since the epoch when it was accepted; used for the TTL. */
  readonly createdAt: number;
}

/**
 * A stored message as a subscription reads it: with its position in the
 * queue, which increases in the order messages arrive and is never reused,
 * so that a reader can continue after the last message it took.
 */
export interface QueuedMessage extends StoredMessage {
  readonly position: number;
}

/**
 * A log entry as stored (docs/protocol.md §9.15): sealed under the queue key
 * exactly as a message is, with its entry ID in the message ID's role.
 */
export interface StoredEntry {
  readonly entryId: Uint8Array;
  readonly sealed: Uint8Array;
  /** Milliseconds since the epoch when it was appended; used for the TTL. */
  readonly createdAt: number;
}

/** A stored entry with the position the log gave it: 1 for the first, then each next integer, never reused. */
export interface LogEntry extends StoredEntry {
  readonly position: number;
}

export interface AppendEntryOptions {
  /**
   * Most entries the log keeps (the relay's logQuota): an append at
   * position p deletes, in its transaction, every entry at or below
   * p - quota. Positions are dense and entries leave only from below, so
   * these are the oldest, and a log never holds more than `quota`.
   */
  readonly quota: number;
}

/** The position the entry was appended at; 'auth' for no such log, or a suspended one. */
export type AppendEntryResult = { readonly position: number } | 'auth';

export type AddMessageResult = 'ok' | 'quota' | 'auth';
export type SecureResult = 'ok' | 'auth';
/** 'duplicate': another queue holds the link ID; 'auth': no such queue, or a messaging queue already secured. */
export type SetLinkResult = 'ok' | 'auth' | 'duplicate';

/** The link data stored under a link ID, and the state of its queue. */
export interface StoredLink {
  readonly linkData: Uint8Array;
  readonly status: QueueStatus;
}

export interface AddMessageOptions {
  /** Most undelivered messages the queue may hold. */
  readonly quota: number;
  /** Unsigned send to an unsecured messaging queue: succeeds only once per queue (any number of times on a contact queue). */
  readonly unsecured: boolean;
  /** Messages created before this are expired and do not count to the quota. */
  readonly notBefore: number;
}

export interface StoreStats {
  readonly queues: number;
  readonly messages: number;
  readonly entries: number;
  readonly links: number;
}

export class DuplicateIdError extends Error {
  override readonly name = 'DuplicateIdError';
}

export interface QueueStore {
  /** Throws DuplicateIdError if either ID is taken (astronomically unlikely with random IDs). */
  createQueue(q: NewQueue): Promise<void>;
  byRecipientId(recipientId: Uint8Array): Promise<QueueRecord | undefined>;
  bySenderId(senderId: Uint8Array): Promise<QueueRecord | undefined>;
  /**
   * Sets the sender key; repeating it with the same key is OK, another key (or a contact queue) is 'auth'.
   * Securing deletes the queue's link data in the same commit: a one-time invitation is spent.
   */
  secureQueue(recipientId: Uint8Array, senderKey: Uint8Array): Promise<SecureResult>;
  suspendQueue(recipientId: Uint8Array): Promise<boolean>;
  /** Deletes the queue, all its messages, its log entries and its link data. */
  deleteQueue(recipientId: Uint8Array): Promise<boolean>;
  /**
   * Sets or replaces the queue's one link (its ID and data); durable when it
   * resolves 'ok'. A secured messaging queue takes none ('auth'): its
   * invitation is spent.
   */
  setLinkData(recipientId: Uint8Array, linkId: Uint8Array, linkData: Uint8Array): Promise<SetLinkResult>;
  /** The link data stored under `linkId`, or undefined. */
  linkByLinkId(linkId: Uint8Array): Promise<StoredLink | undefined>;
  /** Appends a message to an active queue; durable when it resolves 'ok'. */
  addMessage(recipientId: Uint8Array, message: StoredMessage, options: AddMessageOptions): Promise<AddMessageResult>;
  /** The oldest message not created before `notBefore`. */
  peekMessage(recipientId: Uint8Array, notBefore: number): Promise<StoredMessage | undefined>;
  /**
   * The oldest `limit` messages not created before `notBefore` and after
   * `position` (from the start when undefined), oldest first: what a
   * subscription pushes next (docs/protocol.md §9.5).
   */
  peekMessages(recipientId: Uint8Array, notBefore: number, position: number | undefined, limit: number): Promise<QueuedMessage[]>;
  /** Deletes the oldest message if its ID is `msgId`; false if it is not. */
  ackMessage(recipientId: Uint8Array, msgId: Uint8Array, notBefore: number): Promise<boolean>;
  /**
   * Deletes the queue's message at `position` if its ID is `msgId` and it was
   * not created before `notBefore` (an ACK of a pushed message, which need not
   * be the oldest); false, deleting nothing, if there is no such message.
   */
  deleteMessage(recipientId: Uint8Array, position: number, msgId: Uint8Array, notBefore: number): Promise<boolean>;
  /**
   * Appends an entry to an active log at its next position, and deletes
   * what the quota no longer keeps (AppendEntryOptions), in one transaction;
   * durable when it resolves with the position. The log's next position is
   * stored with it: no position is ever given twice, whatever was deleted
   * since, and across restarts.
   */
  appendEntry(recipientId: Uint8Array, entry: StoredEntry, options: AppendEntryOptions): Promise<AppendEntryResult>;
  /**
   * Up to `limit` of the log's entries at or after position `from` that were
   * not created before `notBefore`, in position order: what a log
   * subscription pushes next (docs/protocol.md §9.15).
   */
  readEntries(recipientId: Uint8Array, from: number, notBefore: number, limit: number): Promise<LogEntry[]>;
  /** Deletes the log's entries below position `before`; durable when it resolves with how many. */
  trimLog(recipientId: Uint8Array, before: number): Promise<number>;
  /** Deletes every message and log entry created before `notBefore`; returns how many. */
  deleteExpired(notBefore: number): Promise<number>;
  /** Counts for the operator: queues, stored messages, stored log entries and stored links. */
  stats(): Promise<StoreStats>;
  close(): Promise<void>;
}
