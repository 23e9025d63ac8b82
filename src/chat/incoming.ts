/**
 * What the chat layer does when the agent reports something. These run
 * synchronously inside the agent's transaction, so every row written here
 * commits together with the agent's ratchet step; they never throw for
 * anything a contact can send. Listeners hear about changes only after the
 * transaction ended (a microtask later), and re-read rows from the database,
 * so a rolled-back change is never shown.
 */
import type { AgentHandlers, IncomingMessage, IncomingRequest, LostMessages } from '../agent/agent-api.js';
import { decodeBody, decodePeerInfo } from './body.js';
import { contactLabel } from './contacts.js';
import { formatTtl } from './ttl.js';
import type { ChatStore, Contact, ContactOrigin } from './store.js';

export type ChatEvent =
  | { readonly type: 'message'; readonly messageId: number }
  | { readonly type: 'status'; readonly messageIds: readonly number[] }
  | { readonly type: 'contact'; readonly contactId: number }
  | { readonly type: 'request'; readonly n: number }
  | { readonly type: 'expired'; readonly messageIds: readonly number[] }
  /** Another of the person's devices removed this one (docs/devices.md §7): nothing new reaches it. */
  | { readonly type: 'deviceRemoved' };

export type ChatListener = (event: ChatEvent) => void;

export class IncomingHandlers implements AgentHandlers {
  private readonly listeners = new Set<ChatListener>();
  /** Events of the current synchronous run, by a key that merges repeats. */
  private readonly pending = new Map<string, ChatEvent>();

  constructor(
    private readonly store: ChatStore,
    private readonly now: () => number,
  ) {}

  /** Subscribes to changes; returns the unsubscribe function. */
  listen(listener: ChatListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Tells listeners after the current synchronous transaction has ended.
   * Repeats within one run are merged: a row inserted, rolled back and
   * inserted again (same ID) is announced once.
   */
  emit(event: ChatEvent): void {
    if (this.listeners.size === 0) return;
    if (this.pending.size === 0) queueMicrotask(() => this.flush());
    this.pending.set(JSON.stringify(event), event);
  }

  private flush(): void {
    const events = [...this.pending.values()];
    this.pending.clear();
    for (const event of events) for (const l of this.listeners) l(event);
  }

  /** The contact for a connection, created if the agent reports one the chat has not seen. */
  contactFor(connectionId: string, origin: ContactOrigin): Contact {
    return this.store.contactByConnection(connectionId) ?? this.store.addContact({ connectionId, origin, status: 'pending', displayName: null, createdAt: this.now() });
  }

  /** Stores a local event line in a contact's history; `unread` ones are shown by `read`. */
  addEvent(contact: Contact, text: string, unread: boolean): void {
    const now = this.now();
    const m = this.store.addMessage({ contactId: contact.id, direction: unread ? 'in' : 'out', kind: 'event', seq: null, text, sentAt: now, receivedAt: now, expiresAt: null, readAt: unread ? null : now });
    if (m) this.emit({ type: 'message', messageId: m.id });
  }

  onConnected(connectionId: string, peerInfo: Uint8Array, securityCode?: string): void {
    const contact = this.contactFor(connectionId, 'link');
    const name = decodePeerInfo(peerInfo)?.name ?? contact.displayName ?? 'unnamed contact';
    if (securityCode !== undefined && securityCode !== contact.securityCode) this.store.updateContact(contact.id, { securityCode });
    if (contact.status === 'ready' && contact.displayName === name) return;
    this.store.updateContact(contact.id, { status: 'ready', displayName: name });
    this.addEvent(this.store.contact(contact.id)!, 'connected', true);
    this.emit({ type: 'contact', contactId: contact.id });
  }

  /** The contact's name, learnt during the handshake: shown (and usable in commands) before it finishes. */
  onPeerInfo(connectionId: string, peerInfo: Uint8Array): void {
    const contact = this.store.contactByConnection(connectionId);
    const name = decodePeerInfo(peerInfo)?.name;
    if (!contact || name === undefined || contact.displayName === name) return;
    this.store.updateContact(contact.id, { displayName: name, expiresAt: null });
    this.emit({ type: 'contact', contactId: contact.id });
  }

  onMessage(connectionId: string, message: IncomingMessage): void {
    const contact = this.contactFor(connectionId, 'link');
    const now = this.now();
    const body = decodeBody(message.body);
    // The agent clamps it already; a time from a contact is still never trusted to be a sane number here.
    const sentAt = Number.isSafeInteger(message.sentAt) && message.sentAt >= 0 ? Math.min(message.sentAt, now) : now;
    const base = { contactId: contact.id, direction: 'in', seq: message.seq, sentAt, receivedAt: now } as const;
    let stored;
    switch (body.type) {
      case 'text': {
        const expiresAt = body.ttl === undefined ? null : sentAt + body.ttl;
        stored = this.store.addMessage({ ...base, kind: 'text', text: body.text, expiresAt });
        break;
      }
      case 'read': {
        const ids = this.store.markReadByPeer(contact.id, body.upTo, now);
        if (ids.length > 0) this.emit({ type: 'status', messageIds: ids });
        return;
      }
      case 'timer': {
        this.store.updateContact(contact.id, { ttlSeconds: body.ttl });
        const who = contactLabel(contact);
        const text = body.ttl === null ? `${who} turned disappearing messages off` : `${who} set disappearing messages to ${formatTtl(body.ttl)}`;
        stored = this.store.addMessage({ ...base, kind: 'event', text, expiresAt: null });
        this.emit({ type: 'contact', contactId: contact.id });
        break;
      }
      case 'unknown':
        stored = this.store.addMessage({ ...base, kind: 'event', text: 'a message this version of Nightjar cannot show', expiresAt: null });
        break;
    }
    if (stored) this.emit({ type: 'message', messageId: stored.id });
  }

  /** Messages of the contact that never arrived: the user sees how many, where they would have been. */
  onMessagesLost(connectionId: string, lost: LostMessages): void {
    const contact = this.store.contactByConnection(connectionId);
    if (!contact) return;
    const n = lost.toSeq - lost.fromSeq + 1;
    this.addEvent(contact, `${n} ${n === 1 ? 'message' : 'messages'} could not be delivered`, true);
  }

  onSent(connectionId: string, seq: number): void {
    const contact = this.store.contactByConnection(connectionId);
    if (contact && this.store.markStored(contact.id, seq, this.now())) this.emitStatus(contact.id, seq);
  }

  onDelivered(connectionId: string, seq: number): void {
    const contact = this.store.contactByConnection(connectionId);
    if (contact && this.store.markDelivered(contact.id, seq, this.now())) this.emitStatus(contact.id, seq);
  }

  private emitStatus(contactId: number, seq: number): void {
    const m = this.store.outgoingBySeq(contactId, seq);
    if (m) this.emit({ type: 'status', messageIds: [m.id] });
  }

  onRequest(request: IncomingRequest): void {
    const displayName = decodePeerInfo(request.peerInfo)?.name ?? null;
    const r = this.store.addRequest({ requestId: request.requestId, addressId: request.addressId, displayName, receivedAt: request.receivedAt });
    if (r) this.emit({ type: 'request', n: r.n });
  }

  onDeleted(connectionId: string): void {
    const contact = this.store.contactByConnection(connectionId);
    if (!contact || contact.status === 'left') return;
    this.store.updateContact(contact.id, { status: 'left' });
    this.addEvent(contact, `${contactLabel(contact)} deleted this contact`, true);
    this.emit({ type: 'contact', contactId: contact.id });
  }
}
