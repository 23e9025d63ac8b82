/**
 * The chat layer: contacts, 1:1 text history, read receipts, disappearing
 * messages and contact requests, over the profile database and the agent.
 *
 *   const chat = Chat.open(db);                       // chat tables must exist
 *   const agent = Agent.open(db, chat);               // Chat is the AgentHandlers
 *   chat.attach(agent);
 *   await chat.send(chat.find('bob'), 'hello');       // then agent.sync()
 */
import { AgentError, type AgentHandlers, type IncomingMessage, type IncomingRequest, type LostMessages } from '../agent/agent-api.js';
import type { ChatAgent } from './agent-port.js';
import { decodeBody, encodeBody, encodePeerInfo, validName, type ChatBody } from './body.js';
import { contactLabel, findContact } from './contacts.js';
import { ChatError, type ChatErrorCode } from './errors.js';
import { IncomingHandlers, type ChatListener } from './incoming.js';
import { eraseOldVersions, type DB } from './profile-db.js';
import { createChatSchema, migrateChatSchema } from './schema.js';
import { ChatStore, type Contact, type ContactOrigin, type ContactRequest, type Message } from './store.js';
import { formatTtl } from './ttl.js';
import { Reader, Writer } from '../protocol/codec.js';

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** What an operation of the chat layer answers: its value, or why it was refused where it landed in the log. */
/** The highest seq of each contact among incoming messages: what the read receipts say. */
function readUpTo(messages: readonly Message[]): Map<number, number> {
  const upTo = new Map<number, number>();
  for (const m of messages) if (m.direction === 'in' && m.seq !== null) upTo.set(m.contactId, Math.max(upTo.get(m.contactId) ?? 0, m.seq));
  return upTo;
}

/** How a new contact began, as chat.invite and chat.join carry it. */
const ORIGINS: readonly (ContactOrigin | undefined)[] = [undefined, 'invite', 'link', 'address'];

function encodeNewContact(origin: ContactOrigin, validSeconds: number, prepared: Uint8Array): Uint8Array {
  return new Writer().u8(ORIGINS.indexOf(origin)).u64(BigInt(validSeconds)).bytes(prepared).finish();
}

type OperationResult<T> = { readonly value: T } | { readonly error: { readonly code: ChatErrorCode; readonly message: string } };

export type Clock = () => number;

const systemClock: Clock = () => Math.floor(Date.now() / 1000);

/** How long a one-time invitation nobody used stays valid, unless the invite says otherwise: 7 days. */
export const DEFAULT_INVITATION_SECONDS = 7 * 24 * 3600;

/** Whether a contact is one of our one-time invitations that nobody has used yet. */
export function isUnusedInvitation(c: Contact): boolean {
  return c.origin === 'invite' && c.status === 'pending' && c.displayName === null;
}

export class Chat implements AgentHandlers {
  readonly store: ChatStore;
  private readonly incoming: IncomingHandlers;
  private agentRef: ChatAgent | undefined;

  /**
   * The chat layer's clock (seconds): while the agent applies a device-log
   * event, that event's time, so every device stamps the same rows the
   * same (docs/devices.md §3.2); otherwise `baseNow`.
   */
  private readonly now: Clock = () => {
    const applying = this.agentRef?.applyingAt();
    return applying !== undefined ? Math.floor(applying / 1000) : this.baseNow();
  };

  private constructor(
    readonly db: DB,
    private readonly baseNow: Clock,
  ) {
    this.store = new ChatStore(db);
    this.incoming = new IncomingHandlers(this.store, this.now);
  }

  /** Creates the chat tables and the profile row in a new profile database. */
  static initialize(db: DB, displayName: string, now: Clock = systemClock): void {
    const name = validName(displayName);
    if (name === undefined) throw new ChatError('BAD_INPUT', 'the display name must be 1 to 64 printable characters');
    db.transaction(() => createChatSchema(db, name, now()))();
  }

  static open(db: DB, now: Clock = systemClock): Chat {
    migrateChatSchema(db);
    return new Chat(db, now);
  }

  /** Connects the agent that was opened with this Chat as its handlers. */
  attach(agent: ChatAgent): void {
    this.agentRef = agent;
    // The chat layer's own operations (docs/devices.md §3.6): applied the same way on every device.
    agent.registerOperation('chat.send', (args, context) => this.applySend(args, context.mine));
    agent.registerOperation('chat.read', (args) => this.applyRead(args));
    agent.registerOperation('chat.alias', (args) => this.applyAlias(args));
    agent.registerOperation('chat.verify', (args) => this.applyVerify(args));
    agent.registerOperation('chat.timer', (args) => this.applyTimer(args));
    agent.registerOperation('chat.invite', (args) => this.applyNewContact(args));
    agent.registerOperation('chat.join', (args) => this.applyNewContact(args));
    agent.registerOperation('chat.accept', (args) => this.applyAccept(args));
    agent.registerOperation('chat.reject', (args) => this.applyReject(args));
    agent.registerOperation('chat.address.delete', (args) => this.applyAddressDelete(args));
    agent.registerOperation('chat.delete', (args) => this.applyDelete(args));
  }

  /** Runs a chat operation on the profile (on every device, with several) and returns its value, or throws its refusal. */
  private async run<T>(name: string, args: Uint8Array): Promise<T> {
    const out = (await this.agent.operate(name, args)) as OperationResult<T>;
    if ('error' in out) throw new ChatError(out.error.code, out.error.message);
    return out.value;
  }

  /** The contact an operation names, as it is where the operation lands in the log. */
  private contactAt(r: Reader): Contact {
    const contactId = Number(r.u64('contact'));
    const contact = this.store.contact(contactId);
    if (!contact) throw new ChatError('UNKNOWN_CONTACT', `no contact #${contactId}`);
    return contact;
  }

  private get agent(): ChatAgent {
    if (!this.agentRef) throw new Error('Chat.attach(agent) was not called');
    return this.agentRef;
  }

  listen(listener: ChatListener): () => void {
    return this.incoming.listen(listener);
  }

  // AgentHandlers: called by the agent inside its transaction

  onConnected(connectionId: string, peerInfo: Uint8Array, securityCode?: string): void {
    this.incoming.onConnected(connectionId, peerInfo, securityCode);
  }
  /** A body's disappearing timer, for the copies the agent holds itself (held back, kept for resending). */
  expiryOf(body: Uint8Array, sentAt: number): number | undefined {
    const decoded = decodeBody(body);
    return decoded.type === 'text' && decoded.ttl !== undefined ? Math.min(sentAt, this.now()) + decoded.ttl : undefined;
  }
  onPeerInfo(connectionId: string, peerInfo: Uint8Array): void {
    this.incoming.onPeerInfo(connectionId, peerInfo);
  }
  onMessage(connectionId: string, message: IncomingMessage): void {
    this.incoming.onMessage(connectionId, message);
  }
  onMessagesLost(connectionId: string, lost: LostMessages): void {
    this.incoming.onMessagesLost(connectionId, lost);
  }
  onSent(connectionId: string, seq: number): void {
    this.incoming.onSent(connectionId, seq);
  }
  onDelivered(connectionId: string, seq: number): void {
    this.incoming.onDelivered(connectionId, seq);
  }
  onRequest(request: IncomingRequest): void {
    this.incoming.onRequest(request);
  }
  onDeleted(connectionId: string): void {
    this.incoming.onDeleted(connectionId);
  }
  onDeviceRemoved(): void {
    this.incoming.emit({ type: 'deviceRemoved' });
  }

  // profile

  displayName(): string {
    return this.store.displayName();
  }

  private myInfo(): Uint8Array {
    return encodePeerInfo({ name: this.store.displayName() });
  }

  // connecting

  /**
   * Makes a one-time invitation; the contact appears as pending until
   * someone uses the link, and is withdrawn after `validSeconds` if nobody did.
   */
  async invite(validSeconds = DEFAULT_INVITATION_SECONDS): Promise<{ contact: Contact; link: string }> {
    const { prepared, link } = await this.agent.prepareInvitation(this.myInfo());
    const id = await this.run<number>('chat.invite', encodeNewContact('invite', validSeconds, prepared));
    return { contact: this.store.contact(id)!, link };
  }

  /** Withdraws our one-time invitations that nobody used before they expired (deletes their queues); returns how many. */
  async expireInvitations(): Promise<number> {
    const now = this.now();
    const expired = this.store.contacts().filter((c) => isUnusedInvitation(c) && c.expiresAt !== null && c.expiresAt <= now);
    for (const c of expired) await this.deleteContact(c);
    return expired.length;
  }

  /** Uses a one-time link or a contact address. */
  async connect(link: string): Promise<Contact> {
    const text = link.trim();
    const { prepared } = await this.agent.prepareJoin(text, this.myInfo());
    const id = await this.run<number>('chat.join', encodeNewContact(text.startsWith('nightjar:invite') ? 'link' : 'address', 0, prepared));
    const contact = this.store.contact(id)!;
    await this.agent.afterJoin(contact.connectionId);
    return contact;
  }

  /**
   * chat.invite, chat.join: origin u8 | validSeconds u64 (invitations) |
   * the agent's prepared connection (rest); the connection and its pending
   * contact are stored together, the same on every device.
   */
  private applyNewContact(args: Uint8Array): OperationResult<number> {
    return this.refusal(() => {
      const r = new Reader(args);
      const origin = ORIGINS[r.u8('origin')];
      if (origin === undefined) throw new ChatError('BAD_INPUT', 'a new contact of an unknown origin');
      const validSeconds = Number(r.u64('valid seconds'));
      const connectionId = this.agent.applyPrepared(r.rest());
      const contact = this.pendingContact(connectionId, origin);
      if (origin === 'invite') this.store.updateContact(contact.id, { expiresAt: this.now() + validSeconds });
      return contact.id;
    });
  }

  private pendingContact(connectionId: string, origin: ContactOrigin, displayName: string | null = null): Contact {
    return this.db.transaction(() => {
      const known = this.store.contactByConnection(connectionId);
      if (known) {
        if (known.displayName === null && displayName !== null) this.store.updateContact(known.id, { displayName });
        return this.store.contact(known.id)!;
      }
      return this.store.addContact({ connectionId, origin, status: 'pending', displayName, createdAt: this.now() });
    })();
  }

  async createAddress(): Promise<{ addressId: string; link: string }> {
    return this.agent.createAddress();
  }

  addresses(): { addressId: string; link: string }[] {
    return this.agent.listAddresses();
  }

  /** Deletes a contact address: no new requests through it; existing contacts stay. */
  async deleteAddress(addressId: string): Promise<void> {
    await this.agent.deleteAddressRemote(addressId);
    await this.run<number>('chat.address.delete', utf8.encode(addressId));
  }

  /** chat.address.delete: the address ID (rest): its rows and its requests, on every device. */
  private applyAddressDelete(args: Uint8Array): OperationResult<number> {
    return this.refusal(() => {
      const addressId = fromUtf8.decode(args);
      this.agent.forgetAddress(addressId);
      this.store.deleteRequestsOfAddress(addressId);
      return 0;
    });
  }

  requests(): ContactRequest[] {
    return this.store.requests();
  }

  private request(n: number): ContactRequest {
    const r = Number.isSafeInteger(n) ? this.store.request(n) : undefined;
    if (!r) throw new ChatError('UNKNOWN_REQUEST', `no contact request ${n} (see: nightjar requests)`);
    return r;
  }

  /** Accepts request N: a new contact, on every device (`chat.accept`). */
  async accept(n: number): Promise<Contact> {
    const r = this.request(n);
    const { prepared } = await this.agent.prepareAccept(r.requestId, this.myInfo());
    const id = await this.run<number>('chat.accept', new Writer().u64(BigInt(n)).bytes(prepared).finish());
    const contact = this.store.contact(id)!;
    await this.agent.afterAccept(contact.connectionId);
    return contact;
  }

  /** chat.accept: request n u64 | the agent's prepared acceptance (rest); refused if another device answered the request first. */
  private applyAccept(args: Uint8Array): OperationResult<number> {
    return this.refusal(() => {
      const reader = new Reader(args);
      const r = this.request(Number(reader.u64('request')));
      const connectionId = this.agent.applyPrepared(reader.rest());
      this.store.deleteRequest(r.n);
      return this.pendingContact(connectionId, 'request', r.displayName).id;
    });
  }

  /** Rejects request N, on every device (`chat.reject`). */
  async reject(n: number): Promise<ContactRequest> {
    const r = this.request(n);
    await this.run<number>('chat.reject', new Writer().u64(BigInt(n)).finish());
    return r;
  }

  /** chat.reject: request n u64. */
  private applyReject(args: Uint8Array): OperationResult<number> {
    return this.refusal(() => {
      const r = this.request(Number(new Reader(args).u64('request')));
      this.agent.rejectRequest(r.requestId);
      this.store.deleteRequest(r.n);
      return r.n;
    });
  }

  // contacts

  /** Contacts, without our unused one-time invitations unless `all`. */
  contacts(options: { all?: boolean } = {}): Contact[] {
    const list = this.store.contacts();
    return options.all ? list : list.filter((c) => !isUnusedInvitation(c));
  }

  find(ref: string): Contact {
    return findContact(this.store.contacts(), ref);
  }

  /** Sets (or with null removes) the contact's alias, on every device (`chat.alias`). */
  async setAlias(contact: Contact, alias: string | null): Promise<Contact> {
    const w = new Writer().u64(BigInt(contact.id));
    const id = await this.run<number>('chat.alias', (alias === null ? w.u8(0) : w.u8(1).bytes(utf8.encode(alias))).finish());
    return this.store.contact(id)!;
  }

  /** chat.alias: contact u64 | 0 (remove) or 1 | alias (rest, UTF-8); checked where it lands. */
  private applyAlias(args: Uint8Array): OperationResult<number> {
    return this.refusal(() => {
      const r = new Reader(args);
      const contact = this.contactAt(r);
      let alias: string | null = r.u8('has alias') === 1 ? fromUtf8.decode(r.rest()) : null;
      if (alias !== null) {
        const clean = validName(alias);
        if (clean === undefined || clean.startsWith('#')) throw new ChatError('BAD_INPUT', 'an alias must be 1 to 64 printable characters and not start with #');
        const clash = this.store.contacts().find((c) => c.id !== contact.id && (c.alias ?? '').toLowerCase() === clean.toLowerCase());
        if (clash) throw new ChatError('BAD_INPUT', `alias "${clean}" is already used for another contact (#${clash.id})`);
        alias = clean;
      }
      this.store.updateContact(contact.id, { alias });
      return contact.id;
    });
  }

  /** Deletes the connection (its queues on the relays) and the whole history. */
  async deleteContact(contact: Contact): Promise<void> {
    await this.run<number>('chat.delete', new Writer().u64(BigInt(contact.id)).finish());
    await this.agent.finishDelete(contact.connectionId);
    eraseOldVersions(this.db); // the history's old page versions leave the log too
  }

  /** chat.delete: contact u64: the contact told (DEL), the contact and its history gone, on every device. */
  private applyDelete(args: Uint8Array): OperationResult<number> {
    return this.refusal(() => {
      const contact = this.contactAt(new Reader(args));
      try {
        this.agent.queueDelete(contact.connectionId);
      } catch (e) {
        if (!(e instanceof AgentError && e.code === 'UNKNOWN_CONNECTION')) throw e;
      }
      this.store.deleteContact(contact.id);
      return contact.id;
    });
  }

  async rotate(contact: Contact, relay?: string): Promise<void> {
    this.sendable(contact);
    await this.agent.rotate(contact.connectionId, relay);
  }

  // messages

  /**
   * Whether messages can be queued for the contact: once connected, and
   * already while the handshake finishes once we know who is on the other
   * side (the agent holds them until the contact's queue is secured).
   */
  private sendable(contact: Contact): void {
    const label = contactLabel(contact);
    if (contact.status === 'left') throw new ChatError('CONTACT_NOT_READY', `${label} deleted this contact; you can read the history or delete it`);
    const status = this.agent.connection(contact.connectionId)?.status;
    if (status === undefined || status === 'deleted') throw new ChatError('CONTACT_NOT_READY', `the connection to ${label} no longer exists`);
    if (status === 'ready' || ((status === 'accepting' || status === 'joining') && contact.displayName !== null)) return;
    if (isUnusedInvitation(contact)) throw new ChatError('CONTACT_NOT_READY', `nobody has used this invitation (#${contact.id}) yet`);
    throw new ChatError('CONTACT_NOT_READY', `${label} has not answered yet; you can send once they have (see: nightjar contacts)`);
  }

  /**
   * What the user knows of a contact's keys: its current security code (once
   * the key agreement is done), whether they confirmed it, and whether the
   * code changed since they did (then they must compare again).
   */
  /** The contact with its security code as the agent has it now (recorded, so that listing contacts needs no agent). */
  refreshSecurityCode(contact: Contact): Contact {
    const code = this.agent.securityCode(contact.connectionId) ?? null;
    if (code !== contact.securityCode) this.store.updateContact(contact.id, { securityCode: code });
    return this.store.contact(contact.id)!;
  }

  /** Records every connected contact's security code as the agent has it now (any change shows as "keys changed" where it was verified). */
  refreshSecurityCodes(): void {
    for (const c of this.store.contacts()) if (c.status === 'ready') this.refreshSecurityCode(c);
  }

  /** Marks the contact verified with its current code, or not verified any more, on every device (`chat.verify`). Returns the contact. */
  async setVerified(contact: Contact, verified: boolean): Promise<Contact> {
    const now = this.refreshSecurityCode(contact);
    if (verified && now.securityCode === null) throw new ChatError('CONTACT_NOT_READY', `${contactLabel(contact)} is not connected yet: there is no security code to compare`);
    const id = await this.run<number>('chat.verify', new Writer().u64(BigInt(contact.id)).bytes(utf8.encode(verified ? now.securityCode! : '')).finish());
    return this.store.contact(id)!;
  }

  /** chat.verify: contact u64 | the code the person confirmed (rest, UTF-8; empty: not verified any more). */
  private applyVerify(args: Uint8Array): OperationResult<number> {
    return this.refusal(() => {
      const r = new Reader(args);
      const contact = this.contactAt(r);
      const code = fromUtf8.decode(r.rest());
      this.store.updateContact(contact.id, { verifiedCode: code === '' ? null : code });
      return contact.id;
    });
  }

  /** Whether the handshake with the contact has finished (messages to it leave at once). */
  isConnected(contact: Contact): boolean {
    return this.agent.connection(contact.connectionId)?.status === 'ready';
  }

  /** Queues `body` with the agent; `store` runs in the same transaction with the new seq. */
  private sendBody<T>(contact: Contact, body: ChatBody, store: (seq: number) => T): T {
    const bytes = this.encoded(body);
    return this.agent.transaction(() => store(this.agent.send(contact.connectionId, bytes)));
  }

  /** The body's bytes; BAD_INPUT when they are over what one message carries. */
  private encoded(body: ChatBody): Uint8Array {
    const bytes = encodeBody(body);
    if (bytes.length > this.agent.maxBodyLength) {
      throw new ChatError('BAD_INPUT', `message too long: ${bytes.length} bytes encoded, at most ${this.agent.maxBodyLength}`);
    }
    return bytes;
  }

  /** A text message to `contact`, with its disappearing timer if it has one. */
  private textBody(contact: Contact, text: string): ChatBody {
    return contact.ttlSeconds === null ? { type: 'text', text } : { type: 'text', text, ttl: contact.ttlSeconds };
  }

  /**
   * Stores and queues a text message; it leaves with the next agent.sync()
   * or while agent.start() runs. With several devices it is stored once the
   * device log has it, on every device (the `chat.send` operation).
   */
  async send(contact: Contact, text: string): Promise<Message> {
    if (text.trim().length === 0) throw new ChatError('BAD_INPUT', 'the message is empty');
    this.sendable(contact);
    this.encoded(this.textBody(contact, text)); // refused here, before the device log, if it is too long
    const id = await this.run<number>('chat.send', new Writer().u64(BigInt(contact.id)).bytes(utf8.encode(text)).finish());
    return this.store.message(id)!;
  }

  /** chat.send: the contact as it is where the operation lands in the log, checked again. */
  private applySend(args: Uint8Array, mine: boolean): OperationResult<number> {
    return this.refusal(() => {
      const r = new Reader(args);
      const contact = this.contactAt(r);
      const text = fromUtf8.decode(r.rest());
      this.sendable(contact);
      const id = this.storeAndQueue(contact, text).id;
      // Sent from another of the person's devices: an open chat here shows it as it shows what arrives.
      if (!mine) this.incoming.emit({ type: 'message', messageId: id });
      return id;
    });
  }

  /** A refusal as a value (an operation must not throw: docs/devices.md §9.3), anything else as it is. */
  private refusal<T>(fn: () => T): OperationResult<T> {
    try {
      return { value: fn() };
    } catch (e) {
      if (e instanceof ChatError) return { error: { code: e.code, message: e.message } };
      if (e instanceof AgentError) return { error: { code: 'CONTACT_NOT_READY', message: e.message } };
      throw e;
    }
  }

  private storeAndQueue(contact: Contact, text: string): Message {
    const now = this.now();
    const ttl = contact.ttlSeconds;
    return this.sendBody(contact, this.textBody(contact, text), (seq) =>
      this.store.addMessage({ contactId: contact.id, direction: 'out', kind: 'text', seq, text, sentAt: now, receivedAt: null, expiresAt: ttl === null ? null : now + ttl })!,
    );
  }

  /** Sets (or with null turns off) the disappearing timer for both sides, on every device (`chat.timer`). */
  async setTimer(contact: Contact, ttl: number | null): Promise<Contact> {
    this.sendable(contact);
    const id = await this.run<number>('chat.timer', new Writer().u64(BigInt(contact.id)).u64(BigInt(ttl ?? 0)).finish());
    return this.store.contact(id)!;
  }

  /** chat.timer: contact u64 | seconds u64 (0: off); checked where it lands. */
  private applyTimer(args: Uint8Array): OperationResult<number> {
    return this.refusal(() => {
      const r = new Reader(args);
      const contact = this.contactAt(r);
      const seconds = Number(r.u64('seconds'));
      const ttl = seconds === 0 ? null : seconds;
      this.sendable(contact);
      const now = this.now();
      const text = ttl === null ? 'you turned disappearing messages off' : `you set disappearing messages to ${formatTtl(ttl)}`;
      this.sendBody(contact, { type: 'timer', ttl }, (seq) => {
        this.store.updateContact(contact.id, { ttlSeconds: ttl });
        this.store.addMessage({ contactId: contact.id, direction: 'out', kind: 'event', seq, text, sentAt: now, receivedAt: null, expiresAt: null, readAt: now });
      });
      return contact.id;
    });
  }

  unread(contact?: Contact): Message[] {
    return this.store.unread(contact?.id);
  }

  /**
   * Marks incoming messages as read and queues a read receipt ("read up to
   * seq N") to each contact concerned that can still receive one.
   */
  async markRead(messages: readonly Message[]): Promise<void> {
    if (messages.length === 0) return;
    const w = new Writer().u16(messages.length);
    for (const m of messages) w.u64(BigInt(m.id));
    const upTo = readUpTo(messages);
    w.u16(upTo.size);
    for (const [contactId, seq] of upTo) w.u64(BigInt(contactId)).u64(BigInt(seq));
    await this.agent.operate('chat.read', w.finish());
  }

  /**
   * chat.read: count u16 | count × message ID u64 | receipts u16 | receipts ×
   * (contact ID u64, seq u64). The marks go on the rows this device still
   * has; the receipts ("read up to seq") are the proposer's, so that every
   * device queues the same ones even where a disappearing message is
   * already gone (its own clock deleted it first).
   */
  private applyRead(args: Uint8Array): void {
    const r = new Reader(args);
    const ids: number[] = [];
    for (let n = r.u16('count'), i = 0; i < n; i++) ids.push(Number(r.u64('message')));
    const messages = ids.map((id) => this.store.message(id)).filter((m): m is Message => m !== undefined);
    let upTo: Map<number, number>;
    if (r.remaining === 0) upTo = readUpTo(messages); // written before the receipts travelled with the IDs
    else {
      upTo = new Map();
      for (let n = r.u16('receipts'), i = 0; i < n; i++) upTo.set(Number(r.u64('contact')), Number(r.u64('seq')));
    }
    const now = this.now();
    this.agent.transaction(() => {
      this.store.markReadByUs(
        messages.map((m) => m.id),
        now,
      );
      for (const [contactId, seq] of upTo) {
        const contact = this.store.contact(contactId);
        if (!contact || contact.status !== 'ready' || seq <= contact.readSentUpTo) continue;
        if (this.agent.connection(contact.connectionId)?.status !== 'ready') continue;
        this.sendBody(contact, { type: 'read', upTo: seq }, () => this.store.updateContact(contactId, { readSentUpTo: seq }));
      }
    });
  }

  history(contact: Contact, limit?: number): Message[] {
    return this.store.history(contact.id, limit);
  }

  message(id: number): Message | undefined {
    return this.store.message(id);
  }

  /** Deletes messages whose disappearing timer ran out; returns how many. */
  deleteExpired(): number {
    const ids = this.db.transaction(() => this.store.deleteExpired(this.now()))();
    if (ids.length > 0) eraseOldVersions(this.db);
    if (ids.length > 0) this.incoming.emit({ type: 'expired', messageIds: ids });
    return ids.length;
  }

  nextExpiry(): number | undefined {
    return this.store.nextExpiry();
  }
}
