/**
 * What the relay does with each command: authorisation, queue state,
 * storage and delivery to subscribers. Transport-free: a connection hands
 * in decoded transmissions and gets responses back, and pushes arrive
 * through the `ClientSession` it registered.
 */
import { timingSafeEqual } from 'node:crypto';
import { dh, generateDhKeyPair, generateSigningKeyPair, verify } from '../crypto/keys.js';
import { randomBytes } from '../crypto/random.js';
import { sha256 } from '../crypto/kdf.js';
import { commandParty, commandVersion, decodeCommand, fieldsVersion, ID_LENGTH, MAX_LINK_DATA_LENGTH, type Command, type CommandType, type Response } from '../protocol/commands.js';
import { ProtocolError, type ErrorCode } from '../protocol/errors.js';
import { deriveQueueKey, sealMessage } from '../protocol/queue-crypto.js';
import { signedData, type DecodedTransmission } from '../protocol/transmission.js';
import { authenticatorForm, registrationSignedData } from '../protocol/authenticator.js';
import { SIGNATURE_LENGTH } from '../crypto/keys.js';
import type { MacParty, SessionMacKeys } from './mac-keys.js';
import type { RelayConfig } from './config.js';
import { DuplicateIdError, type QueueRecord, type QueueStore } from './queue-store.js';
import { PowPolicy } from './pow-policy.js';
import { verifyPow } from '../protocol/pow.js';
import { CURRENT_VERSION } from '../protocol/version.js';
import { Forwarder, type ForwarderOptions, type ForwardingSession } from './forwarding.js';
import { LogSubscriptions } from './log-subscriptions.js';
import { mustWaitForRoom } from './output-room.js';

/** The dispatcher's view of one client connection, or of one forwarded request. */
export interface ClientSession extends ForwardingSession {
  /** TLS channel binding of the connection (for a forwarded request: its forward binding). */
  readonly binding: Uint8Array;
  /** Sends an unsolicited response (MSG, END, LENT) about queue `entityId`. */
  push(entityId: Uint8Array, response: Response): void;
  /** The protocol version the connection negotiated (default: the current one). */
  readonly version?: number;
  /**
   * The MAC keys this session registered (version 5). Absent on sessions
   * that cannot hold any: before version 5, and forwarded requests, which
   * last one command; there the 96- and 32-byte forms are AUTH.
   */
  readonly macKeys?: SessionMacKeys;
  /**
   * Whether the connection already has a full buffer of answers its client
   * has not read; `whenDrained` calls back once it has room again. Pushes
   * wait for room, so a client that does not read cannot make the relay
   * buffer one message per subscribed queue.
   */
  congested?(): boolean;
  whenDrained?(callback: () => void): void;
}

/**
 * What a forwarded request may carry (docs/routing.md): what a sender does
 * (sending, fetching link data), and the next hop of an onion route.
 */
const FORWARDABLE: ReadonlySet<Command['type']> = new Set(['SEND', 'LGET', 'PING', 'PRXY', 'PFWD']);

/** Recipient commands of the queues that hold messages (and link data): a log has neither (§9.15). */
const QUEUE_ONLY: ReadonlySet<CommandType> = new Set(['SUB', 'GET', 'ACK', 'LSET']);
/** Recipient commands of logs alone. */
const LOG_ONLY: ReadonlySet<CommandType> = new Set(['LSUB', 'LTRIM']);

/**
 * A u64 log position as the store counts: no log reaches 2^53 entries (at a
 * million appends a second, 285 years), so a position above it is one no
 * entry has, as 2^53 - 1 is.
 */
const storePosition = (p: bigint): number => Number(p > BigInt(Number.MAX_SAFE_INTEGER) ? BigInt(Number.MAX_SAFE_INTEGER) : p);

/** Retry hint sent with BUSY, in milliseconds. */
export const BUSY_RETRY_MS = 1000;

interface Subscription {
  readonly session: ClientSession;
  readonly recipientId: Uint8Array;
  /** Most messages pushed and not yet acknowledged (SUB's window; 1 before version 4). */
  readonly window: number;
  /** Messages pushed and not yet acknowledged: hex message ID → position in the store. */
  readonly inFlight: Map<string, number>;
  /** Position of the last message pushed: the next push reads after it. */
  position: number | undefined;
  busy: boolean;
  again: boolean;
  /** Waiting for the connection to drain before the next push. */
  waiting: boolean;
}

const err = (code: ErrorCode): Response => ({ type: 'ERR', code });
const OK: Response = { type: 'OK' };

// Verifying against this key when a queue does not exist makes an AUTH
// failure cost the same whether or not the queue exists.
const DUMMY_KEY = generateSigningKeyPair().publicKey;

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** An authenticator's verdict, and the MAC key a valid registering one brings (docs/protocol.md §7). */
interface Authorisation {
  readonly valid: boolean;
  readonly macKey?: Uint8Array;
}

const INVALID: Authorisation = { valid: false };

/**
 * Checks `t`'s authenticator against `queueKey` (the queue's recipient or
 * sender key, or the dummy key for a queue that does not exist): a
 * signature, a signature that registers a MAC key, or a MAC under the key
 * `party` registered on this session. Every path does the work of a valid
 * one (a signature verification, or a MAC under a dummy key).
 */
function authorise(session: ClientSession, party: MacParty, t: DecodedTransmission, queueKey: Uint8Array): Authorisation {
  const auth = t.authenticator;
  switch (authenticatorForm(auth.length, session.version ?? CURRENT_VERSION)) {
    case 'signature':
      return { valid: verify(queueKey, signedData(session.binding, t.signedBody), auth) };
    case 'register': {
      const macKey = auth.subarray(SIGNATURE_LENGTH);
      const valid = verify(queueKey, registrationSignedData(session.binding, macKey, t.signedBody), auth.subarray(0, SIGNATURE_LENGTH));
      // A session that cannot hold keys does not take a registration (forwarded requests).
      return valid && session.macKeys ? { valid, macKey } : INVALID;
    }
    case 'mac':
      return { valid: session.macKeys?.verify(party, t.entityId, queueKey, session.binding, t.signedBody, auth) ?? false };
    default:
      return INVALID;
  }
}

export class Dispatcher {
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly bySession = new Map<ClientSession, Set<string>>();
  private readonly passwordHash: Uint8Array | undefined;
  /** Subscriptions of logs (LSUB), any number per log; their keys are in `bySession` too. */
  private readonly logs: LogSubscriptions<ClientSession>;
  /**
   * Sessions already closed: an LSUB still in hand when its connection
   * closed subscribes nothing, or its subscription would be read and
   * pushed to nobody on every append until the log is deleted.
   */
  private readonly closedSessions = new WeakSet<ClientSession>();
  readonly pow: PowPolicy;
  /** Private routing (PRXY, PFWD, RFWD); without it those commands are CMD_UNKNOWN. */
  readonly forwarder: Forwarder | undefined;

  constructor(
    private readonly store: QueueStore,
    private readonly config: RelayConfig,
    forwarding?: Omit<ForwarderOptions, 'config' | 'execute'>,
  ) {
    this.passwordHash = config.password === undefined ? undefined : sha256(Buffer.from(config.password));
    this.pow = new PowPolicy(config.password === undefined ? config.powBits : 0, config.powLoadThreshold);
    this.forwarder = forwarding && new Forwarder({ ...forwarding, config, execute: (s, t) => this.handle(s, t) });
    this.logs = new LogSubscriptions(store, () => this.notBefore());
  }

  /** Number of queues with a subscriber. */
  get subscriptionCount(): number {
    return this.subscriptions.size;
  }

  /** Number of log subscriptions, over every log and connection. */
  get logSubscriptionCount(): number {
    return this.logs.size;
  }

  /** Oldest creation time a message may have and still be delivered. */
  private notBefore(): number {
    return Date.now() - this.config.messageTtlSeconds * 1000;
  }

  async handle(session: ClientSession, t: DecodedTransmission): Promise<Response> {
    let command: Command;
    try {
      command = decodeCommand(t.command);
    } catch (e) {
      if (e instanceof ProtocolError) return err(e.code);
      throw e;
    }
    const hasAuth = t.authenticator.length > 0;
    const signed = (): Uint8Array => signedData(session.binding, t.signedBody);
    // Commands of a later version are unknown on connections that negotiated an earlier one.
    // A forwarded request has no negotiation: the sender asks for what this relay speaks.
    const version = session.version ?? CURRENT_VERSION;
    if (version < commandVersion(command.type)) return err('CMD_UNKNOWN');
    // A field of a later version is a syntax error there, as an older relay's decoder finds it.
    if (version < fieldsVersion(command)) return err('CMD_SYNTAX');
    if (session.forwardedBy && !FORWARDABLE.has(command.type)) return err('CMD_PROHIBITED');
    switch (commandParty(command.type)) {
      case 'none':
        if (t.entityId.length > 0) return err('CMD_PROHIBITED');
        if (hasAuth) return err('CMD_HAS_AUTH');
        return { type: 'PONG' };
      case 'forward':
        if (!this.forwarder) return err('CMD_UNKNOWN');
        if (command.type !== 'PRXY' && command.type !== 'PFWD' && command.type !== 'RFWD') return err('INTERNAL');
        if (t.entityId.length > 0) return err('CMD_PROHIBITED');
        if (hasAuth) return err('CMD_HAS_AUTH');
        return this.forwarder.handle(session, command);
      case 'create':
        if (command.type !== 'NEW') return err('INTERNAL');
        if (t.entityId.length > 0) return err('CMD_PROHIBITED');
        if (!hasAuth) return err('CMD_NO_AUTH');
        if (!verify(command.recipientAuthKey, signed(), t.authenticator)) return err('AUTH');
        if (!this.passwordHash) {
          // Priced on arrival; counted toward the load only with valid work at the base price, so
          // NEWs without work cannot raise the price for everyone (docs/protocol.md §9.3).
          const bits = this.pow.currentBits();
          if (verifyPow(session.binding, command.recipientAuthKey, command.powNonce, this.pow.baseBits)) this.pow.recordAttempt();
          if (!verifyPow(session.binding, command.recipientAuthKey, command.powNonce, bits)) return { type: 'POW', bits };
        }
        return this.createQueue(command);
      case 'recipient': {
        if (t.entityId.length === 0) return err('CMD_NO_ENTITY');
        if (!hasAuth) return err('CMD_NO_AUTH');
        const queue = await this.store.byRecipientId(t.entityId);
        const auth = authorise(session, 'recipient', t, queue?.recipientKey ?? DUMMY_KEY);
        if (!queue || !auth.valid) return err('AUTH');
        // Registered once the command is authorised, whatever it then answers; a full table registers nothing (§12).
        if (auth.macKey) session.macKeys?.register('recipient', t.entityId, queue.recipientKey, auth.macKey);
        return this.recipientCommand(session, queue, command);
      }
      case 'sender': {
        if (command.type === 'LGET') return this.linkGet(t.entityId, hasAuth);
        if (command.type !== 'SEND') return err('INTERNAL');
        if (t.entityId.length === 0) return err('CMD_NO_ENTITY');
        const queue = await this.store.bySenderId(t.entityId);
        const auth = hasAuth ? authorise(session, 'sender', t, queue?.senderKey ?? DUMMY_KEY) : INVALID;
        if (!queue || queue.status !== 'active') return err('AUTH');
        if (queue.mode === 'log') {
          // A log takes no unsigned confirmation: its creator sets the key with KEY, and until then
          // every SEND is AUTH; afterwards only the key's holder appends.
          if (!queue.senderKey || !auth.valid) return err('AUTH');
          if (auth.macKey) session.macKeys?.register('sender', t.entityId, queue.senderKey, auth.macKey);
          return this.append(queue, command);
        }
        // A secured queue takes only authenticated messages; an unsecured one only its single
        // unsigned confirmation; a contact queue only unsigned messages, any number.
        const oneShotUsed = queue.mode === 'messaging' && queue.unsecuredSendUsed;
        if (queue.senderKey ? !auth.valid : hasAuth || oneShotUsed) return err('AUTH');
        if (auth.macKey && queue.senderKey) session.macKeys?.register('sender', t.entityId, queue.senderKey, auth.macKey);
        return this.send(queue, command);
      }
    }
  }

  private async createQueue(c: Extract<Command, { type: 'NEW' }>): Promise<Response> {
    if (this.passwordHash) {
      const given = sha256(c.basicAuth);
      if (!timingSafeEqual(given, this.passwordHash)) return err('AUTH');
    }
    const relayDh = generateDhKeyPair();
    let queueKey: Uint8Array;
    try {
      queueKey = deriveQueueKey(dh(relayDh.privateKey, c.recipientDhKey));
    } catch {
      return err('CMD_SYNTAX');
    }
    for (let attempt = 0; attempt < 3; attempt++) {
      const recipientId = randomBytes(ID_LENGTH);
      const senderId = randomBytes(ID_LENGTH);
      try {
        await this.store.createQueue({ recipientId, senderId, recipientKey: c.recipientAuthKey, queueKey, mode: c.queueMode });
        return { type: 'IDS', recipientId, senderId, relayDhKey: relayDh.publicKey };
      } catch (e) {
        if (!(e instanceof DuplicateIdError)) throw e;
      }
    }
    return err('INTERNAL');
  }

  private async recipientCommand(session: ClientSession, queue: QueueRecord, c: Command): Promise<Response> {
    const id = queue.recipientId;
    // Only after authorisation: to anyone without the key, a log and a queue look alike.
    if (queue.mode === 'log' ? QUEUE_ONLY.has(c.type) : LOG_ONLY.has(c.type)) return err('CMD_PROHIBITED');
    switch (c.type) {
      case 'KEY':
        return (await this.store.secureQueue(id, c.senderAuthKey)) === 'ok' ? OK : err('AUTH');
      case 'SUB': {
        if (this.subscriptionLimitReached(session, id)) return { type: 'ERR', code: 'BUSY', retryAfterMs: BUSY_RETRY_MS };
        this.subscribe(session, id, c.window ?? 1);
        return OK;
      }
      case 'LSUB': {
        if (this.closedSessions.has(session)) return OK; // answered to nobody
        if (this.subscriptionLimitReached(session, id)) return { type: 'ERR', code: 'BUSY', retryAfterMs: BUSY_RETRY_MS };
        this.logs.subscribe(session, id, storePosition(c.position));
        this.sessionKeys(session).add(hex(id));
        return OK;
      }
      case 'LTRIM':
        await this.store.trimLog(id, storePosition(c.position));
        return OK;
      case 'GET': {
        const m = await this.store.peekMessage(id, this.notBefore());
        return m ? { type: 'MSG', msgId: m.msgId, encryptedBody: m.sealed } : err('NO_MSG');
      }
      case 'ACK': {
        // A message in flight on the subscription is deleted wherever it is in the window;
        // any other ACK means what it meant before windows: the oldest message, if it is that one.
        const sub = this.subscriptions.get(hex(id));
        const msgKey = hex(c.msgId);
        const position = sub?.inFlight.get(msgKey);
        const deleted =
          position === undefined
            ? await this.store.ackMessage(id, c.msgId, this.notBefore())
            : await this.store.deleteMessage(id, position, c.msgId, this.notBefore());
        // Out of the window either way: deleted, or expired (never to be delivered again).
        if (position !== undefined) sub!.inFlight.delete(msgKey);
        if (sub && (deleted || position !== undefined)) void this.deliver(sub);
        return deleted ? OK : err('NO_MSG');
      }
      case 'OFF':
        await this.store.suspendQueue(id);
        return OK;
      case 'DEL':
        await this.store.deleteQueue(id);
        this.unsubscribe(hex(id));
        // A log's subscriptions end too, without END (§9.15).
        for (const s of this.logs.endLog(id)) this.bySession.get(s)?.delete(hex(id));
        return OK;
      case 'LSET': {
        if (c.linkData.length > MAX_LINK_DATA_LENGTH) return err('LARGE_MSG');
        // A link ID held by another queue is AUTH: that link is not this key's to change.
        const result = await this.store.setLinkData(id, c.linkId, c.linkData);
        return result === 'ok' ? OK : err('AUTH');
      }
      default:
        return err('INTERNAL');
    }
  }

  /**
   * LGET: anyone holding a link ID may read its data; nothing is signed.
   * Unknown, suspended and spent links all answer AUTH after the same one
   * indexed lookup, with no signature to verify on either path. A found link
   * costs a row read more; that is not padded out, because unlike a recipient
   * command's AUTH the answer itself tells whoever holds a link ID whether it
   * exists (docs/protocol.md §9.14).
   */
  private async linkGet(linkId: Uint8Array, hasAuth: boolean): Promise<Response> {
    if (linkId.length === 0) return err('CMD_NO_ENTITY');
    if (hasAuth) return err('CMD_HAS_AUTH');
    const link = await this.store.linkByLinkId(linkId);
    if (!link || link.status !== 'active') return err('AUTH');
    return { type: 'LNK', linkData: link.linkData };
  }

  /**
   * SEND to a log: the entry is sealed as a message is (§10, the entry ID in
   * the message ID's role), committed at the log's next position with the
   * other SENDs of this turn, and then pushed to the log's subscriptions. A
   * log never answers QUOTA: the append drops its oldest entries instead.
   */
  private async append(queue: QueueRecord, c: Extract<Command, { type: 'SEND' }>): Promise<Response> {
    if (c.body.length > this.config.maxMessageLength) return err('LARGE_MSG');
    const entryId = randomBytes(ID_LENGTH);
    const createdAt = Date.now();
    const sealed = sealMessage(queue.queueKey, entryId, { timestamp: Math.floor(createdAt / 1000), flags: c.flags, body: c.body });
    const result = await this.store.appendEntry(queue.recipientId, { entryId, sealed, createdAt }, { quota: this.config.logQuota });
    if (result === 'auth') return err('AUTH'); // suspended or deleted since it was looked up
    this.logs.appended(queue.recipientId);
    return OK;
  }

  private async send(queue: QueueRecord, c: Extract<Command, { type: 'SEND' }>): Promise<Response> {
    if (c.body.length > this.config.maxMessageLength) return err('LARGE_MSG');
    const msgId = randomBytes(ID_LENGTH);
    const createdAt = Date.now();
    const sealed = sealMessage(queue.queueKey, msgId, { timestamp: Math.floor(createdAt / 1000), flags: c.flags, body: c.body });
    const result = await this.store.addMessage(
      queue.recipientId,
      { msgId, sealed, createdAt },
      { quota: this.config.queueQuota, unsecured: queue.senderKey === null, notBefore: this.notBefore() },
    );
    if (result === 'quota') return err('QUOTA');
    if (result === 'auth') return err('AUTH');
    const sub = this.subscriptions.get(hex(queue.recipientId));
    if (sub) void this.deliver(sub);
    return OK;
  }

  /** Whether `session` holds maxSubscriptionsPerConnection subscriptions (queues and logs) and none of `id`. */
  private subscriptionLimitReached(session: ClientSession, id: Uint8Array): boolean {
    const mine = this.bySession.get(session);
    return mine !== undefined && !mine.has(hex(id)) && mine.size >= this.config.maxSubscriptionsPerConnection;
  }

  /** The subscriptions `session` holds: hex recipient IDs of queues and logs. */
  private sessionKeys(session: ClientSession): Set<string> {
    let keys = this.bySession.get(session);
    if (!keys) this.bySession.set(session, (keys = new Set()));
    return keys;
  }

  private subscribe(session: ClientSession, recipientId: Uint8Array, window: number): void {
    const key = hex(recipientId);
    const previous = this.subscriptions.get(key);
    if (previous && previous.session !== session) {
      this.bySession.get(previous.session)?.delete(key);
      previous.session.push(recipientId, { type: 'END' });
    }
    // A new SUB (even a repeated one) starts again from the oldest unacknowledged message,
    // so what was in flight is delivered again, in order.
    const sub: Subscription = { session, recipientId, window, inFlight: new Map(), position: undefined, busy: false, again: false, waiting: false };
    this.subscriptions.set(key, sub);
    this.sessionKeys(session).add(key);
    // Pushed after the OK that the connection is about to send.
    setImmediate(() => void this.deliver(sub));
  }

  private unsubscribe(key: string): void {
    const sub = this.subscriptions.get(key);
    if (!sub) return;
    this.subscriptions.delete(key);
    this.bySession.get(sub.session)?.delete(key);
  }

  /**
   * Pushes the oldest messages not yet pushed, in order, until `window` of
   * them await their ACK; each ACK makes room for one more.
   */
  private async deliver(sub: Subscription): Promise<void> {
    if (sub.busy) {
      sub.again = true;
      return;
    }
    sub.busy = true;
    // Waits for room when the connection's answers fill its budget; true if it must wait.
    const mustWait = (): boolean => mustWaitForRoom(sub, sub.session, () => void this.deliver(sub));
    try {
      do {
        sub.again = false;
        // One message per read, each after a check of the budget. A message read counts in the
        // budget only once pushed, and after a drain every waiting subscription of the connection
        // reads at once: reading a whole window each would hold up to MAX_PUSH_WINDOW messages
        // per subscription in memory beyond the budget (test/e2e/abuse.test.ts).
        while (sub.inFlight.size < sub.window && this.subscriptions.get(hex(sub.recipientId)) === sub) {
          if (mustWait()) return;
          const [m] = await this.store.peekMessages(sub.recipientId, this.notBefore(), sub.position, 1);
          if (!m) break;
          // Checked again right before the push: other pushes may have filled the budget meanwhile.
          if (mustWait()) return;
          if (sub.inFlight.size >= sub.window || this.subscriptions.get(hex(sub.recipientId)) !== sub) return;
          sub.inFlight.set(hex(m.msgId), m.position);
          sub.position = m.position;
          sub.session.push(sub.recipientId, { type: 'MSG', msgId: m.msgId, encryptedBody: m.sealed });
        }
      } while (sub.again);
    } finally {
      sub.busy = false;
    }
  }

  /** Forgets every subscription and forwarding session of a closed connection. */
  closeSession(session: ClientSession): void {
    this.closedSessions.add(session);
    this.forwarder?.closeSession(session);
    const keys = this.bySession.get(session);
    if (!keys) return;
    for (const key of keys) {
      if (this.subscriptions.get(key)?.session === session) this.subscriptions.delete(key);
      this.logs.unsubscribe(session, key);
    }
    this.bySession.delete(session);
  }
}
