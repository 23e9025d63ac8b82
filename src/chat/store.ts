/**
 * Plain SQL over the chat tables (schema.ts). No policy here: the Chat
 * class decides what to store; this module only reads and writes rows.
 */
import type { DB } from './profile-db.js';

export type ContactOrigin = 'invite' | 'link' | 'address' | 'request';
export type ContactStatus = 'pending' | 'ready' | 'left';

export interface Contact {
  readonly id: number;
  readonly connectionId: string;
  readonly origin: ContactOrigin;
  readonly status: ContactStatus;
  readonly displayName: string | null;
  readonly alias: string | null;
  /** Disappearing-messages timer in seconds, or null when off. */
  readonly ttlSeconds: number | null;
  readonly readSentUpTo: number;
  readonly createdAt: number;
  /** Our unused one-time invitation is withdrawn at this time (seconds), if nobody uses it. */
  readonly expiresAt: number | null;
  /** The connection's security code, once its key agreement is done. */
  readonly securityCode: string | null;
  /** The security code the user compared and confirmed, if they did. */
  readonly verifiedCode: string | null;
}

/** Outgoing: queued → sent (the contact's relay stored it) → delivered → read. Incoming: new → read. */
export type MessageStatus = 'queued' | 'sent' | 'delivered' | 'read' | 'new';

export interface Message {
  readonly id: number;
  readonly contactId: number;
  readonly direction: 'in' | 'out';
  readonly kind: 'text' | 'event';
  /** The sender's agent sequence number; null for local events. */
  readonly seq: number | null;
  readonly text: string;
  readonly sentAt: number;
  readonly receivedAt: number | null;
  readonly relayAt: number | null;
  readonly deliveredAt: number | null;
  readonly readAt: number | null;
  readonly expiresAt: number | null;
  readonly status: MessageStatus;
}

export interface ContactRequest {
  readonly n: number;
  readonly requestId: string;
  readonly addressId: string;
  readonly displayName: string | null;
  readonly receivedAt: number;
  readonly shown: boolean;
}

interface ContactRowDb {
  id: number;
  connection_id: string;
  origin: ContactOrigin;
  status: ContactStatus;
  display_name: string | null;
  alias: string | null;
  ttl_seconds: number | null;
  read_sent_up_to: number;
  created_at: number;
  expires_at: number | null;
  security_code: string | null;
  verified_code: string | null;
}

interface MessageRowDb {
  id: number;
  contact_id: number;
  direction: 'in' | 'out';
  kind: 'text' | 'event';
  seq: number | null;
  text: string;
  sent_at: number;
  received_at: number | null;
  relay_at: number | null;
  delivered_at: number | null;
  read_at: number | null;
  expires_at: number | null;
}

interface RequestRowDb {
  n: number;
  request_id: string;
  address_id: string;
  display_name: string | null;
  received_at: number;
  shown: number;
}

function toContact(r: ContactRowDb): Contact {
  return {
    id: r.id,
    connectionId: r.connection_id,
    origin: r.origin,
    status: r.status,
    displayName: r.display_name,
    alias: r.alias,
    ttlSeconds: r.ttl_seconds,
    readSentUpTo: r.read_sent_up_to,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    securityCode: r.security_code,
    verifiedCode: r.verified_code,
  };
}

function statusOf(r: MessageRowDb): MessageStatus {
  if (r.direction === 'in') return r.read_at === null ? 'new' : 'read';
  if (r.read_at !== null) return 'read';
  if (r.delivered_at !== null) return 'delivered';
  return r.relay_at !== null ? 'sent' : 'queued';
}

function toMessage(r: MessageRowDb): Message {
  return {
    id: r.id,
    contactId: r.contact_id,
    direction: r.direction,
    kind: r.kind,
    seq: r.seq,
    text: r.text,
    sentAt: r.sent_at,
    receivedAt: r.received_at,
    relayAt: r.relay_at,
    deliveredAt: r.delivered_at,
    readAt: r.read_at,
    expiresAt: r.expires_at,
    status: statusOf(r),
  };
}

function toRequest(r: RequestRowDb): ContactRequest {
  return { n: r.n, requestId: r.request_id, addressId: r.address_id, displayName: r.display_name, receivedAt: r.received_at, shown: r.shown !== 0 };
}

export interface NewMessage {
  readonly contactId: number;
  readonly direction: 'in' | 'out';
  readonly kind: 'text' | 'event';
  readonly seq: number | null;
  readonly text: string;
  readonly sentAt: number;
  readonly receivedAt: number | null;
  readonly expiresAt: number | null;
  /** Events we generate ourselves are stored already read. */
  readonly readAt?: number | null;
}

export class ChatStore {
  constructor(readonly db: DB) {}

  // profile and settings

  displayName(): string {
    return (this.db.prepare('SELECT display_name FROM chat_profile WHERE id = 1').pluck().get() as string | undefined) ?? '';
  }

  setDisplayName(name: string): void {
    this.db.prepare('UPDATE chat_profile SET display_name = ? WHERE id = 1').run(name);
  }

  setting(key: string): string | undefined {
    return this.db.prepare('SELECT value FROM chat_settings WHERE key = ?').pluck().get(key) as string | undefined;
  }

  setSetting(key: string, value: string): void {
    this.db.prepare('INSERT INTO chat_settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  // contacts

  addContact(c: { connectionId: string; origin: ContactOrigin; status: ContactStatus; displayName: string | null; createdAt: number; expiresAt?: number | null }): Contact {
    const id = this.db
      .prepare('INSERT INTO chat_contacts (connection_id, origin, status, display_name, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(c.connectionId, c.origin, c.status, c.displayName, c.createdAt, c.expiresAt ?? null).lastInsertRowid;
    return this.contact(Number(id))!;
  }

  contact(id: number): Contact | undefined {
    const r = this.db.prepare('SELECT * FROM chat_contacts WHERE id = ?').get(id) as ContactRowDb | undefined;
    return r && toContact(r);
  }

  contactByConnection(connectionId: string): Contact | undefined {
    const r = this.db.prepare('SELECT * FROM chat_contacts WHERE connection_id = ?').get(connectionId) as ContactRowDb | undefined;
    return r && toContact(r);
  }

  contacts(): Contact[] {
    return (this.db.prepare('SELECT * FROM chat_contacts ORDER BY id').all() as ContactRowDb[]).map(toContact);
  }

  updateContact(
    id: number,
    change: {
      status?: ContactStatus;
      displayName?: string | null;
      alias?: string | null;
      ttlSeconds?: number | null;
      readSentUpTo?: number;
      expiresAt?: number | null;
      securityCode?: string | null;
      verifiedCode?: string | null;
    },
  ): void {
    const sets: string[] = [];
    const values: (string | number | null)[] = [];
    const column = {
      status: 'status',
      displayName: 'display_name',
      alias: 'alias',
      ttlSeconds: 'ttl_seconds',
      readSentUpTo: 'read_sent_up_to',
      expiresAt: 'expires_at',
      securityCode: 'security_code',
      verifiedCode: 'verified_code',
    } as const;
    for (const key of Object.keys(column) as (keyof typeof column)[]) {
      const value = change[key];
      if (value === undefined) continue;
      sets.push(`${column[key]} = ?`);
      values.push(value);
    }
    if (sets.length > 0) this.db.prepare(`UPDATE chat_contacts SET ${sets.join(', ')} WHERE id = ?`).run(...values, id);
  }

  /** Removes the contact and its whole history. */
  deleteContact(id: number): void {
    this.db.prepare('DELETE FROM chat_messages WHERE contact_id = ?').run(id);
    this.db.prepare('DELETE FROM chat_contacts WHERE id = ?').run(id);
  }

  // messages

  /** Inserts a message; returns undefined when (contact, direction, seq) is already stored. */
  addMessage(m: NewMessage): Message | undefined {
    const r = this.db
      .prepare(
        `INSERT OR IGNORE INTO chat_messages (contact_id, direction, kind, seq, text, sent_at, received_at, expires_at, read_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(m.contactId, m.direction, m.kind, m.seq, m.text, m.sentAt, m.receivedAt, m.expiresAt, m.readAt ?? null);
    return r.changes === 0 ? undefined : this.message(Number(r.lastInsertRowid));
  }

  message(id: number): Message | undefined {
    const r = this.db.prepare('SELECT * FROM chat_messages WHERE id = ?').get(id) as MessageRowDb | undefined;
    return r && toMessage(r);
  }

  outgoingBySeq(contactId: number, seq: number): Message | undefined {
    const r = this.db.prepare("SELECT * FROM chat_messages WHERE contact_id = ? AND direction = 'out' AND seq = ?").get(contactId, seq) as MessageRowDb | undefined;
    return r && toMessage(r);
  }

  /** The contact's relay stored our message `seq`. Returns whether a row changed. */
  markStored(contactId: number, seq: number, at: number): boolean {
    return this.db.prepare("UPDATE chat_messages SET relay_at = ? WHERE contact_id = ? AND direction = 'out' AND seq = ? AND relay_at IS NULL").run(at, contactId, seq).changes > 0;
  }

  /** The contact's agent received our message `seq` (which implies the relay stored it). */
  markDelivered(contactId: number, seq: number, at: number): boolean {
    return (
      this.db
        .prepare(
          "UPDATE chat_messages SET delivered_at = ?, relay_at = coalesce(relay_at, ?) WHERE contact_id = ? AND direction = 'out' AND seq = ? AND delivered_at IS NULL",
        )
        .run(at, at, contactId, seq).changes > 0
    );
  }

  /** The contact read our messages up to `upTo`; returns the IDs that changed. */
  markReadByPeer(contactId: number, upTo: number, at: number): number[] {
    const ids = this.db
      .prepare("SELECT id FROM chat_messages WHERE contact_id = ? AND direction = 'out' AND kind = 'text' AND seq <= ? AND read_at IS NULL")
      .pluck()
      .all(contactId, upTo) as number[];
    this.db
      .prepare(
        `UPDATE chat_messages SET read_at = ?, delivered_at = coalesce(delivered_at, ?), relay_at = coalesce(relay_at, ?)
         WHERE contact_id = ? AND direction = 'out' AND kind = 'text' AND seq <= ? AND read_at IS NULL`,
      )
      .run(at, at, at, contactId, upTo);
    return ids;
  }

  /** Incoming messages and events not yet shown, oldest first; all contacts when `contactId` is undefined. */
  unread(contactId?: number): Message[] {
    const rows =
      contactId === undefined
        ? this.db.prepare("SELECT * FROM chat_messages WHERE direction = 'in' AND read_at IS NULL AND pruned = 0 ORDER BY id").all()
        : this.db.prepare("SELECT * FROM chat_messages WHERE direction = 'in' AND read_at IS NULL AND pruned = 0 AND contact_id = ? ORDER BY id").all(contactId);
    return (rows as MessageRowDb[]).map(toMessage);
  }

  markReadByUs(ids: readonly number[], at: number): void {
    const stmt = this.db.prepare("UPDATE chat_messages SET read_at = ? WHERE id = ? AND direction = 'in' AND read_at IS NULL");
    for (const id of ids) stmt.run(at, id);
  }

  /** How many text messages the history holds (what every view shows: not pruned). */
  textMessageCount(): number {
    return this.db.prepare("SELECT count(*) FROM chat_messages WHERE kind = 'text' AND pruned = 0").pluck().get() as number;
  }

  /** The last `limit` messages with a contact, oldest first. */
  history(contactId: number, limit = -1): Message[] {
    const rows = this.db.prepare('SELECT * FROM (SELECT * FROM chat_messages WHERE contact_id = ? AND pruned = 0 ORDER BY id DESC LIMIT ?) ORDER BY id').all(contactId, limit) as MessageRowDb[];
    return rows.map(toMessage);
  }

  /** Deletes messages whose disappearing timer ran out; returns their IDs. */
  deleteExpired(now: number): number[] {
    const ids = this.db.prepare('SELECT id FROM chat_messages WHERE expires_at IS NOT NULL AND expires_at <= ?').pluck().all(now) as number[];
    if (ids.length > 0) this.db.prepare('DELETE FROM chat_messages WHERE expires_at IS NOT NULL AND expires_at <= ?').run(now);
    return ids;
  }

  /** Earliest expiry still ahead, for scheduling the next deletion. */
  nextExpiry(): number | undefined {
    return (this.db.prepare('SELECT min(expires_at) FROM chat_messages WHERE expires_at IS NOT NULL').pluck().get() as number | null) ?? undefined;
  }

  // contact requests (someone used our contact address)

  addRequest(r: { requestId: string; addressId: string; displayName: string | null; receivedAt: number }): ContactRequest | undefined {
    // checked first: a conflicting INSERT OR IGNORE would still use up a request number
    if (this.db.prepare('SELECT 1 FROM chat_requests WHERE request_id = ?').get(r.requestId) !== undefined) return undefined;
    const res = this.db
      .prepare('INSERT INTO chat_requests (request_id, address_id, display_name, received_at) VALUES (?, ?, ?, ?)')
      .run(r.requestId, r.addressId, r.displayName, r.receivedAt);
    return this.request(Number(res.lastInsertRowid));
  }

  request(n: number): ContactRequest | undefined {
    const r = this.db.prepare('SELECT * FROM chat_requests WHERE n = ?').get(n) as RequestRowDb | undefined;
    return r && toRequest(r);
  }

  requests(): ContactRequest[] {
    return (this.db.prepare('SELECT * FROM chat_requests ORDER BY n').all() as RequestRowDb[]).map(toRequest);
  }

  markRequestsShown(ns: readonly number[]): void {
    const stmt = this.db.prepare('UPDATE chat_requests SET shown = 1 WHERE n = ?');
    for (const n of ns) stmt.run(n);
  }

  deleteRequest(n: number): void {
    this.db.prepare('DELETE FROM chat_requests WHERE n = ?').run(n);
  }

  /** Requests that arrived through one address (removed when the address is deleted). */
  deleteRequestsOfAddress(addressId: string): void {
    this.db.prepare('DELETE FROM chat_requests WHERE address_id = ?').run(addressId);
  }
}
