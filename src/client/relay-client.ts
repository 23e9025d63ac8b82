/**
 * A client for one relay: a single TLS session carrying every command,
 * responses matched to commands by correlation ID, commands issued in the
 * same turn of the event loop batched into shared blocks, pushed messages
 * delivered as events, and automatic reconnection with backoff that
 * re-subscribes every queue.
 *
 *   const client = await RelayClient.connect('nightjar://...@relay.example:5225');
 *   const queue = await client.createQueue();
 *   client.on('message', (q, m) => { ...; void client.ack(q, m.msgId); });
 *   await client.subscribe(queue, { window: 8 });
 *
 * Logs (version 6) are read with subscribeLog, from a position of the
 * reader's choice, and re-subscribed after reconnects from where the
 * reader got to (logs.ts keeps the positions).
 */
import { EventEmitter } from 'node:events';
import { dh, generateDhKeyPair, generateSigningKeyPair } from '../crypto/keys.js';
import { CryptoError } from '../crypto/errors.js';
import { formatAddress, parseAddress, type RelayAddress } from '../protocol/address.js';
import { decodeBatch, encodeBatch, packBatches, type PendingTransmission } from '../protocol/block.js';
import { commandParty, decodeResponse, encodeCommandParts, isPushWindow, MAX_PUSH_WINDOW, type Command, type QueueMode, type Response } from '../protocol/commands.js';
import { deriveQueueKey, openMessage } from '../protocol/queue-crypto.js';
import { MAX_POW_BITS } from '../protocol/pow.js';
import { solvePowOffThread } from './pow-solver.js';
import { authenticatedTransmissionLength, decodeTransmission, writeAuthenticatedTransmission } from '../protocol/transmission.js';
import type { Authentication } from '../protocol/authenticator.js';
import { ClientMacKeys, type MacParty } from './mac-keys.js';
import { ConnectionError, RelayError } from './errors.js';
import type { ReceivedMessage, RecipientQueue, SenderQueue } from './queues.js';
import { openTransport, type RelayTransport } from '../transport/session.js';
import { ForwardRoutes, type RouteHop } from './forwarding.js';
import { checkLinkData, checkLinkId, requiringLinkData } from './link-data.js';
import { checkLogPosition, LogReaders, requiringLogs, type LogEntryHandler, type LogSubscribe } from './logs.js';
import { LINK_DATA_VERSION, LOG_QUEUE_VERSION, PRIVATE_ROUTING_VERSION, PUSH_WINDOW_VERSION, SESSION_MAC_VERSION } from '../protocol/version.js';
import { randomBytes } from '../crypto/random.js';

export interface RelayClientOptions {
  /** Relay password for creating queues on a private relay. */
  readonly password?: string;
  /** Milliseconds before an unanswered command fails with TIMEOUT (default 15 000). */
  readonly commandTimeoutMs?: number;
  /** Milliseconds for connect + handshake (default 10 000). */
  readonly connectTimeoutMs?: number;
  /** Reconnect after the connection drops (default true). */
  readonly reconnect?: boolean;
  /**
   * While reconnecting, hold new commands until the connection is back
   * (default true); false fails them at once with ConnectionError CLOSED.
   */
  readonly waitForReconnect?: boolean;
  /** First and largest backoff delay in ms (defaults 250 and 30 000). */
  readonly backoffMs?: { readonly initial: number; readonly max: number };
  /** Sees every block after the handshake, decrypted, as it leaves or arrives (debugging and tests). */
  readonly trace?: (direction: 'in' | 'out', block: Uint8Array) => void;
  /** Local IP address to connect from (default: chosen by the system). */
  readonly localAddress?: string;
  /**
   * The most proof-of-work bits createQueue grinds for (default MAX_POW_BITS,
   * 28); a relay asking more gets PowError TOO_HARD without any work done.
   */
  readonly maxPowBits?: number;
  /** Milliseconds createQueue may spend solving proof of work, over all its attempts (default 60 000): then PowError TIMEOUT. */
  readonly powTimeoutMs?: number;
}

export interface RelayClientEvents {
  /** A message pushed on a subscribed queue, in queue order; acknowledging it makes room for the next. */
  message: [queue: RecipientQueue, message: ReceivedMessage];
  /**
   * A pushed message that did not decrypt under the queue key (it is left
   * unacknowledged), or a log entry that did not (CryptoError) or that the
   * protocol rules out (PushError: a position not above the previous one);
   * neither is delivered.
   */
  messageError: [queue: RecipientQueue, error: Error];
  /** Another connection subscribed to this queue; pushes stop here. */
  end: [queue: RecipientQueue];
  disconnected: [error: ConnectionError];
  reconnected: [];
  /** Reconnection gave up for good (wrong fingerprint or version). */
  failed: [error: ConnectionError];
}

interface Pending {
  readonly command: Command['type'];
  readonly resolve: (r: Response) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
  /** Set when the command registers a MAC key: told the answer (undefined if none comes). */
  onAnswer?: (r: Response | undefined) => void;
  /** Told the answer as it is read, before the pushes after it in its block (LSUB: pushes count from its OK). */
  readonly answered?: (r: Response) => void;
}

interface Outgoing {
  readonly corrId: Uint8Array;
  readonly entityId: Uint8Array;
  /** The encoded command as parts (encodeCommandParts): a long body stays the caller's view until flush() copies it into the block. */
  readonly command: readonly Uint8Array[];
  readonly signingKey: Uint8Array | undefined;
  /** Whose key signs it, for the commands that may carry a MAC instead (not NEW). */
  readonly party: MacParty | undefined;
}

/** A subscribed queue and the push window it asked for. */
interface Subscribed {
  readonly queue: RecipientQueue;
  readonly window: number;
}

const EMPTY = new Uint8Array(0);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export class RelayClient extends EventEmitter<RelayClientEvents> {
  readonly address: RelayAddress;
  readonly addressText: string;
  private transport: RelayTransport | undefined;
  /** MAC keys of the current session (version 5): new with every connection, never stored. */
  private macKeys: ClientMacKeys | undefined;
  private readonly pending = new Map<string, Pending>();
  private outbox: Outgoing[] = [];
  private flushScheduled = false;
  private nextCorrId = 1;
  private readonly subscribed = new Map<string, Subscribed>();
  /** The logs read here (subscribeLog), and where each got to. */
  private readonly logs: LogReaders;
  private closed = false;
  private reconnecting: Promise<void> | undefined;
  /** The pending backoff sleep, so close() can end it at once. */
  private backoffTimer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  private readonly opts: Required<Omit<RelayClientOptions, 'password' | 'trace' | 'localAddress'>> &
    Pick<RelayClientOptions, 'password' | 'trace' | 'localAddress'>;
  /** Forwarding sessions opened on this connection (private routing). */
  private readonly routes: ForwardRoutes;
  /** Aborted by close(): stops proof-of-work workers still grinding. */
  private readonly closing = new AbortController();

  private constructor(address: RelayAddress, options: RelayClientOptions) {
    super();
    this.address = address;
    this.addressText = formatAddress(address);
    this.opts = {
      commandTimeoutMs: 15_000,
      connectTimeoutMs: 10_000,
      reconnect: true,
      waitForReconnect: true,
      backoffMs: { initial: 250, max: 30_000 },
      maxPowBits: MAX_POW_BITS,
      powTimeoutMs: 60_000,
      ...options,
    };
    this.logs = new LogReaders(this.addressText);
    this.routes = new ForwardRoutes({
      address,
      password: options.password,
      request: (command) => this.request(EMPTY, command),
    });
  }

  /** Connects to `address` (text or parsed); rejects with ConnectionError. */
  static async connect(address: string | RelayAddress, options: RelayClientOptions = {}): Promise<RelayClient> {
    const client = new RelayClient(typeof address === 'string' ? parseAddress(address) : address, options);
    client.attach(await openTransport(client.address, client.opts.connectTimeoutMs, client.transportOptions()));
    return client;
  }

  private transportOptions(): { localAddress?: string } {
    return this.opts.localAddress === undefined ? {} : { localAddress: this.opts.localAddress };
  }

  /** Whether the TLS session is up right now. */
  get connected(): boolean {
    return this.transport !== undefined;
  }

  /** How many queues and logs this session is subscribed to (pushes would stop if it closed). */
  get subscriptionCount(): number {
    return this.subscribed.size + this.logs.size;
  }

  private attach(t: RelayTransport): void {
    this.transport = t;
    this.macKeys = t.version >= SESSION_MAC_VERSION ? new ClientMacKeys() : undefined;
    t.socket.on('data', (chunk: Buffer) => {
      for (const block of t.reader.push(chunk)) this.onBlock(block);
    });
    t.socket.on('error', () => undefined); // 'close' follows and handles it
    t.socket.on('close', () => this.onDisconnect(t));
    for (const block of t.early) this.onBlock(block);
    if (this.outbox.length > 0) this.scheduleFlush();
  }

  private onDisconnect(t: RelayTransport): void {
    if (this.transport !== t) return;
    this.transport = undefined;
    this.macKeys = undefined; // registered on that session only
    this.routes.clear(); // forwarding sessions live and die with the connection
    const error = new ConnectionError('CLOSED', this.addressText, 'connection closed');
    for (const [key, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(error);
      this.pending.delete(key);
    }
    if (this.closed) return;
    this.emit('disconnected', error);
    if (this.opts.reconnect) void this.reconnect();
  }

  private reconnect(): Promise<void> {
    this.reconnecting ??= (async () => {
      let delay = this.opts.backoffMs.initial;
      while (!this.closed) {
        await new Promise<void>((r) => {
          this.wake = r;
          this.backoffTimer = setTimeout(r, delay * (0.5 + Math.random() / 2));
        });
        if (this.closed) break;
        try {
          const t = await openTransport(this.address, this.opts.connectTimeoutMs, this.transportOptions());
          if (this.closed) {
            t.socket.destroy();
            break;
          }
          this.attach(t);
          const subs = [...this.subscribed.values()];
          const results = await Promise.allSettled([
            ...subs.map(({ queue, window }) => this.request(queue.recipientId, this.subCommand(window), queue.recipientKey)),
            this.resubscribeLogs(t.version),
          ]);
          // A refused SUB (the queue is gone) is no longer kept up; a lost connection tries again.
          results.slice(0, subs.length).forEach((r, i) => {
            if (r.status === 'rejected' && r.reason instanceof RelayError) this.subscribed.delete(hex(subs[i]!.queue.recipientId));
          });
          this.emit('reconnected');
          break;
        } catch (e) {
          if (e instanceof ConnectionError && !e.retryable) {
            this.closed = true;
            this.emit('failed', e);
            break;
          }
          delay = Math.min(delay * 2, this.opts.backoffMs.max);
        }
      }
    })().finally(() => {
      this.reconnecting = undefined;
    });
    return this.reconnecting;
  }

  private onBlock(block: Uint8Array): void {
    this.opts.trace?.('in', block);
    let transmissions: Uint8Array[];
    try {
      transmissions = decodeBatch(block);
    } catch {
      return; // a relay that sends garbage is ignored block by block; pending commands time out
    }
    for (const bytes of transmissions) {
      let response: Response;
      let corrId: Uint8Array;
      let entityId: Uint8Array;
      try {
        const t = decodeTransmission(bytes);
        response = decodeResponse(t.command);
        corrId = t.corrId;
        entityId = t.entityId;
      } catch {
        continue;
      }
      if (corrId.length > 0) {
        const key = hex(corrId);
        const p = this.pending.get(key);
        if (!p) continue;
        this.pending.delete(key);
        clearTimeout(p.timer);
        p.onAnswer?.(response);
        p.answered?.(response);
        p.resolve(response);
      } else {
        this.onPush(entityId, response);
      }
    }
  }

  /**
   * Subscribes every log read here again on a new connection, each from the
   * position after the last entry it delivered. One the relay refuses (the
   * log is gone), and every one on a relay that no longer speaks version
   * 6, is no longer read: `isSubscribed` tells.
   */
  private async resubscribeLogs(version: number): Promise<void> {
    const keys = this.logs.keys();
    if (version < LOG_QUEUE_VERSION) {
      for (const key of keys) this.logs.forget(key);
      return;
    }
    // A refusal by the relay ends the reading; a lost connection leaves it for the next reconnect.
    const refusal = (e: unknown): boolean => e instanceof RelayError || (e instanceof ConnectionError && e.reason === 'VERSION');
    await Promise.allSettled(keys.map((key) => this.logs.resume(key)).map((lsub) => lsub && this.sendLogSubscribe(lsub, refusal)));
  }

  /** Sends an LSUB; an error for which `ends` is true stops the reading it was for. */
  private async sendLogSubscribe(lsub: LogSubscribe, ends: (e: unknown) => boolean): Promise<void> {
    const { recipientId, recipientKey } = lsub.queue;
    try {
      this.expect(await requiringLogs(() => this.request(recipientId, lsub.command, recipientKey, lsub.onAnswer)), 'OK');
    } catch (e) {
      if (ends(e)) lsub.refused();
      throw e;
    }
  }

  private onPush(entityId: Uint8Array, response: Response): void {
    if (response.type === 'LENT') {
      const failed = this.logs.receive(entityId, response);
      if (failed) this.emit('messageError', failed.queue, failed.error);
      return;
    }
    const queue = this.subscribed.get(hex(entityId))?.queue;
    if (!queue) return;
    if (response.type === 'MSG') {
      let message: ReceivedMessage;
      try {
        message = { msgId: response.msgId, ...openMessage(queue.queueKey, response.msgId, response.encryptedBody) };
      } catch (e) {
        this.emit('messageError', queue, e instanceof Error ? e : new Error(String(e)));
        return;
      }
      this.emit('message', queue, message);
    } else if (response.type === 'END') {
      this.subscribed.delete(hex(entityId));
      this.emit('end', queue);
    }
  }

  /** Sends one command and resolves with the relay's answer; ERR rejects with RelayError. */
  private request(entityId: Uint8Array, command: Command, signingKey?: Uint8Array, answered?: (r: Response) => void): Promise<Response> {
    if (this.closed) return Promise.reject(new ConnectionError('CLOSED', this.addressText, 'client closed'));
    if (!this.transport && !this.opts.waitForReconnect) return Promise.reject(new ConnectionError('CLOSED', this.addressText, 'not connected (reconnecting)'));
    const corrIdNumber = this.nextCorrId++;
    const corrId = Buffer.alloc(4);
    corrId.writeUInt32BE(corrIdNumber >>> 0);
    const encoded = encodeCommandParts(command);
    return new Promise<Response>((resolve, reject) => {
      const key = hex(corrId);
      const timer = setTimeout(() => {
        this.pending.get(key)?.onAnswer?.(undefined);
        this.pending.delete(key);
        reject(new ConnectionError('TIMEOUT', this.addressText, `${command.type} unanswered after ${this.opts.commandTimeoutMs} ms`));
      }, this.opts.commandTimeoutMs);
      this.pending.set(key, {
        command: command.type,
        timer,
        reject,
        ...(answered ? { answered } : {}),
        resolve: (r) => (r.type === 'ERR' ? reject(new RelayError(r.code, command.type, this.addressText, r.retryAfterMs)) : resolve(r)),
      });
      const party = commandParty(command.type);
      this.outbox.push({
        corrId: new Uint8Array(corrId),
        entityId,
        command: encoded,
        signingKey,
        party: party === 'recipient' || party === 'sender' ? party : undefined,
      });
      this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  /**
   * Authenticates (with this session's binding) and writes everything
   * queued, batched into blocks. Each transmission is laid out straight
   * in its block (writeAuthenticatedTransmission): a SEND's body is copied
   * once, from the caller's buffer into the block. Every copy of 16 KiB
   * counts: V8 counts ArrayBuffer bytes toward its old-generation limit,
   * so each one brings the next full GC closer.
   */
  private flush(): void {
    this.flushScheduled = false;
    const t = this.transport;
    if (!t || this.outbox.length === 0) return; // kept until the connection is back
    const out = this.outbox;
    this.outbox = [];
    const binding = t.binding;
    const transmissions = out.map((o): PendingTransmission => {
      const auth = this.authentication(o);
      return {
        length: authenticatedTransmissionLength(o.corrId, o.entityId, o.command, auth.form),
        writeTo: (into) => writeAuthenticatedTransmission(into, binding, o.corrId, o.entityId, o.command, auth),
      };
    });
    t.socket.cork();
    try {
      for (const batch of packBatches(transmissions)) {
        const block = encodeBatch(batch);
        this.opts.trace?.('out', block);
        t.socket.write(block);
      }
    } finally {
      t.socket.uncork();
    }
  }

  /**
   * A MAC where this session registered a key for the command's party and
   * entity, a registration where it may register one, else a signature
   * (always before version 5, and for NEW). A registration learns from the
   * command's answer whether the key is in place (mac-keys.ts).
   */
  private authentication(o: Outgoing): Authentication {
    if (!o.signingKey) return { form: 'none' };
    const macs = this.macKeys;
    if (!macs || !o.party) return { form: 'signature', signingKey: o.signingKey };
    const auth = macs.authentication(o.party, o.entityId, o.signingKey);
    if (auth.form === 'register') {
      const party = o.party;
      const p = this.pending.get(hex(o.corrId));
      const settle = (r: Response | undefined): void => macs.settle(party, o.entityId, auth.macKey, r);
      if (p) p.onAnswer = settle;
      else settle(undefined); // no one waits for its answer (timed out before it left)
    }
    return auth;
  }

  private expect<T extends Response['type']>(r: Response, type: T): Extract<Response, { type: T }> {
    if (r.type !== type) throw new ConnectionError('CLOSED', this.addressText, `unexpected ${r.type} where ${type} was due`);
    return r as Extract<Response, { type: T }>;
  }

  /**
   * Creates a queue with fresh keys. With `subscribe`, pushes start at once.
   * `mode: 'contact'` makes a contact-address queue that anyone may send to unsigned.
   * `mode: 'log'` (version 6) makes a log: secure it with `secureQueue`
   * under a sender key of your own, append with `send`, read with
   * `subscribeLog` (`subscribe` is a RangeError there); a relay that speaks
   * no version 6 is ConnectionError VERSION, and nothing is sent.
   * The relay's proof of work is solved in a worker thread, within
   * `maxPowBits` and `powTimeoutMs`; beyond them it rejects with PowError
   * and nothing is created.
   */
  async createQueue(options: { subscribe?: boolean; mode?: QueueMode } = {}): Promise<RecipientQueue> {
    if (options.mode === 'log') {
      if (options.subscribe) throw new RangeError('a log is read with subscribeLog, not subscribed with createQueue');
      this.requireVersion(LOG_QUEUE_VERSION, 'logs');
    }
    const auth = generateSigningKeyPair();
    const dhKeys = generateDhKeyPair();
    const newCommand = (powNonce: Uint8Array): Command => ({
      type: 'NEW',
      recipientAuthKey: auth.publicKey,
      recipientDhKey: dhKeys.publicKey,
      basicAuth: Buffer.from(this.opts.password ?? ''),
      queueMode: options.mode ?? 'messaging',
      powNonce,
    });
    // Solve what the relay asked for at connect time; if its load has raised the price since, it answers POW.
    let bits = this.opts.password === undefined ? (this.transport?.powBits ?? 0) : 0;
    let answer: Response | undefined;
    // Solving runs off the event loop, bounded in bits and in time over every attempt (pow-solver.ts).
    const deadline = performance.now() + this.opts.powTimeoutMs;
    const bounds = { maxBits: this.opts.maxPowBits, deadline, relay: this.addressText, signal: this.closing.signal };
    // The price rises two bits at a time, at most 12 above the base (relay/pow-policy.ts): eight
    // attempts outlast a flood that keeps raising it while we solve.
    for (let attempt = 0; attempt < 8; attempt++) {
      const binding = this.transport?.binding;
      const nonce = bits > 0 && binding ? await solvePowOffThread(binding, auth.publicKey, bits, bounds) : EMPTY;
      const create = (): Promise<Response> => this.request(EMPTY, newCommand(nonce), auth.privateKey);
      answer = await (options.mode === 'log' ? requiringLogs(create) : create());
      if (answer.type !== 'POW') break;
      bits = answer.bits;
    }
    const ids = this.expect(answer!, 'IDS');
    let queueKey: Uint8Array;
    try {
      queueKey = deriveQueueKey(dh(dhKeys.privateKey, ids.relayDhKey));
    } catch (e) {
      if (e instanceof CryptoError) throw new ConnectionError('CLOSED', this.addressText, 'relay sent an invalid DH key');
      throw e;
    }
    const queue: RecipientQueue = {
      relay: this.address,
      recipientId: ids.recipientId,
      senderId: ids.senderId,
      recipientKey: auth.privateKey,
      queueKey,
    };
    if (options.subscribe) await this.subscribe(queue);
    return queue;
  }

  /** Lets only holders of `senderPublicKey` send to the queue from now on. */
  async secureQueue(queue: RecipientQueue, senderPublicKey: Uint8Array): Promise<void> {
    this.expect(await this.request(queue.recipientId, { type: 'KEY', senderAuthKey: senderPublicKey }, queue.recipientKey), 'OK');
  }

  /**
   * Whether this client keeps `queue` subscribed: asked for, not refused,
   * not ended by the relay (END); it is subscribed again after every
   * reconnection, so there is nothing to renew.
   */
  isSubscribed(queue: RecipientQueue): boolean {
    return this.subscribed.has(hex(queue.recipientId)) || this.logs.has(queue);
  }

  /**
   * How many of `queue`'s messages the relay pushes before one is
   * acknowledged: the window subscribed with where the connection speaks
   * version 4, else 1 (and 1 for a queue not subscribed here).
   */
  pushWindow(queue: RecipientQueue): number {
    const window = this.subscribed.get(hex(queue.recipientId))?.window ?? 1;
    return (this.transport?.version ?? 0) >= PUSH_WINDOW_VERSION ? window : 1;
  }

  /**
   * Starts pushes of this queue's messages, oldest first, as 'message'
   * events; renewed after reconnects. Up to `window` (1..MAX_PUSH_WINDOW,
   * default 1) are pushed before the first is acknowledged, and each ACK,
   * in any order, makes room for the next (docs/protocol.md §9.5). A relay
   * that negotiated a version before 4 pushes one at a time whatever the
   * window. Subscribing again (and every reconnect) pushes again every
   * message not yet acknowledged. Throws RangeError for a window outside
   * 1..MAX_PUSH_WINDOW.
   *
   * @example
   *   await client.subscribe(queue, { window: 8 });
   */
  async subscribe(queue: RecipientQueue, options: { window?: number } = {}): Promise<void> {
    const window = options.window ?? 1;
    if (!isPushWindow(window)) throw new RangeError(`push window must be 1..${MAX_PUSH_WINDOW}, got ${window}`);
    this.subscribed.set(hex(queue.recipientId), { queue, window });
    try {
      this.expect(await this.request(queue.recipientId, this.subCommand(window), queue.recipientKey), 'OK');
    } catch (e) {
      if (e instanceof RelayError) this.subscribed.delete(hex(queue.recipientId));
      throw e;
    }
  }

  /**
   * SUB with `window` where the connection speaks version 4; bare SUB (a
   * window of 1) for a window of 1 and on older versions, so those see
   * exactly the SUB they know. Between connections the version is unknown:
   * a SUB queued then goes bare, and the SUB that every reconnect sends
   * after it asks for the window again.
   */
  private subCommand(window: number): Command {
    const version = this.transport?.version ?? 0;
    return window > 1 && version >= PUSH_WINDOW_VERSION ? { type: 'SUB', window } : { type: 'SUB' };
  }

  /**
   * Stops re-subscribing this queue or log after reconnects (the relay stops
   * pushes when the connection ends); a log's entries still pushed on this
   * connection are no longer delivered.
   */
  forget(queue: RecipientQueue): void {
    this.subscribed.delete(hex(queue.recipientId));
    this.logs.forget(hex(queue.recipientId));
  }

  /**
   * Reads the log `queue` from `fromPosition` (a safe integer from 1):
   * `onEntry` gets every retained entry at or above it, in position order,
   * then each new one as it is appended, opened with the queue's key.
   * Positions strictly increase; a gap means the entries between were
   * trimmed, dropped by the relay's quota, or expired. Resolves once the
   * relay has taken the subscription. After every reconnect the log is
   * subscribed again from the position after the last entry delivered, so
   * nothing is delivered twice. Calling it again for the same log starts
   * over from the new position with the new handler. If it rejects, the
   * log is not read (`isSubscribed` is false). Rejects with
   * RangeError for a position that is not a safe integer from 1,
   * ConnectionError VERSION when the relay speaks no version 6 (nothing is
   * sent), RelayError AUTH when the log is gone or the key is wrong, and
   * CMD_PROHIBITED when `queue` is not a log.
   *
   * @example
   *   await client.subscribeLog(log, lastSeen + 1, (e) => apply(e.position, e.body));
   */
  async subscribeLog(queue: RecipientQueue, fromPosition: number, onEntry: LogEntryHandler): Promise<void> {
    checkLogPosition(fromPosition, 'fromPosition');
    this.requireVersion(LOG_QUEUE_VERSION, 'logs');
    // Whatever the error, the caller learns the log is not read: a reading whose LSUB went
    // unanswered would wait for an OK that opens its pushes (logs.ts) and may never come.
    await this.sendLogSubscribe(this.logs.start(queue, fromPosition, onEntry), () => true);
  }

  /**
   * Deletes the log's entries below `beforePosition` (a safe integer from
   * 1; beyond the last entry it deletes them all); positions are not
   * reused. Resolves once the relay has committed it. Rejects as
   * `subscribeLog` does.
   *
   * @example
   *   await client.trimLog(log, everyDeviceHasRead + 1);
   */
  async trimLog(queue: RecipientQueue, beforePosition: number): Promise<void> {
    checkLogPosition(beforePosition, 'beforePosition');
    this.requireVersion(LOG_QUEUE_VERSION, 'logs');
    const command: Command = { type: 'LTRIM', position: BigInt(beforePosition) };
    this.expect(await requiringLogs(() => this.request(queue.recipientId, command, queue.recipientKey)), 'OK');
  }

  /** The oldest unacknowledged message, or null when the queue is empty. */
  async get(queue: RecipientQueue): Promise<ReceivedMessage | null> {
    let r: Response;
    try {
      r = await this.request(queue.recipientId, { type: 'GET' }, queue.recipientKey);
    } catch (e) {
      if (e instanceof RelayError && e.code === 'NO_MSG') return null;
      throw e;
    }
    const m = this.expect(r, 'MSG');
    return { msgId: m.msgId, ...openMessage(queue.queueKey, m.msgId, m.encryptedBody) };
  }

  /**
   * Deletes message `msgId`: one pushed on this queue's subscription and
   * not yet acknowledged (any of them, in any order), or else the oldest
   * (as after `get`); RelayError NO_MSG if it is neither. Makes room for
   * the next push.
   */
  async ack(queue: RecipientQueue, msgId: Uint8Array): Promise<void> {
    this.expect(await this.request(queue.recipientId, { type: 'ACK', msgId }, queue.recipientKey), 'OK');
  }

  /** Stops the queue accepting messages; what it holds can still be read. */
  async suspend(queue: RecipientQueue): Promise<void> {
    this.expect(await this.request(queue.recipientId, { type: 'OFF' }, queue.recipientKey), 'OK');
  }

  /** Deletes the queue (or log) and every message (or entry) in it. */
  async deleteQueue(queue: RecipientQueue): Promise<void> {
    this.expect(await this.request(queue.recipientId, { type: 'DEL' }, queue.recipientKey), 'OK');
    this.forget(queue);
  }

  /**
   * Sends `body` to a queue; resolves once the relay has it on disk. The
   * body is copied when its block is written, after this call returns:
   * the caller does not change it afterwards.
   */
  async send(queue: SenderQueue, body: Uint8Array, flags = 0): Promise<void> {
    this.expect(await this.request(queue.senderId, { type: 'SEND', flags, body }, queue.senderKey), 'OK');
  }

  /**
   * Sends `body` to a queue by private routing: through this client's relay
   * (`route[0]`, which must be this client's relay) and any further
   * forwarding relays in `route`, to the queue's relay, which never sees
   * this client's address. One hop is private routing, two are onion
   * routing. Forwarding sessions are opened on first use and reused; each
   * message is sealed with fresh ephemeral keys. Resolves once the queue's
   * relay has the message on disk. Rejects with RelayError (the ERR of the
   * relay that refused, e.g. AUTH or QUOTA from the destination, PROXY from a
   * hop that cannot reach the next) or ConnectionError (FINGERPRINT when a
   * relay's certificate or routing key does not match its address).
   *
   * @example
   *   await client.sendVia([client.address], queue, body);              // private
   *   await client.sendVia([client.address, other], queue, body);       // onion
   */
  async sendVia(route: readonly RouteHop[], queue: SenderQueue, body: Uint8Array, flags = 0): Promise<void> {
    this.requireVersion(PRIVATE_ROUTING_VERSION, 'private routing');
    const command: Command = { type: 'SEND', flags, body };
    const answer = await this.routes.request(route, queue.relay, { corrId: randomBytes(4), entityId: queue.senderId, command, signingKey: queue.senderKey });
    if (answer.type !== 'OK') throw new ConnectionError('CLOSED', formatAddress(queue.relay), `unexpected ${answer.type} where OK was due`);
  }

  /** ConnectionError VERSION when the current connection negotiated a version before `version`. */
  private requireVersion(version: number, feature: string): void {
    if (this.transport && this.transport.version < version) {
      throw new ConnectionError('VERSION', this.addressText, `relay does not speak ${feature} (protocol version ${version})`);
    }
  }

  /**
   * Stores `data` on the queue's relay under `linkId` (docs/protocol.md
   * §9.14), replacing the queue's previous link data and link ID. Resolves
   * once the relay has it on disk. On a messaging queue the relay deletes it
   * when the queue is secured; on a contact queue it stays until the queue
   * is deleted. Rejects with RangeError for a link ID that is not 24 bytes
   * or data that is not 1..MAX_LINK_DATA_LENGTH bytes, ConnectionError
   * VERSION when the relay speaks no version 3, and RelayError AUTH when the
   * queue is gone or secured, or another queue holds `linkId`.
   *
   * @example
   *   await client.setLinkData(queue, linkId, sealedInvitation);
   */
  async setLinkData(queue: RecipientQueue, linkId: Uint8Array, data: Uint8Array): Promise<void> {
    checkLinkId(linkId);
    checkLinkData(data);
    this.requireVersion(LINK_DATA_VERSION, 'link data');
    const answer = await requiringLinkData(() => this.request(queue.recipientId, { type: 'LSET', linkId, linkData: data }, queue.recipientKey));
    this.expect(answer, 'OK');
  }

  /**
   * The link data stored under `linkId` on this client's relay, fetched
   * directly (the relay sees this client's address; `getLinkDataVia` hides
   * it). Rejects with RelayError AUTH when there is none (never set, spent,
   * deleted, or its queue suspended) and ConnectionError VERSION when the
   * relay speaks no version 3.
   *
   * @example
   *   const sealed = await client.getLinkData(linkId);
   */
  async getLinkData(linkId: Uint8Array): Promise<Uint8Array> {
    checkLinkId(linkId);
    this.requireVersion(LINK_DATA_VERSION, 'link data');
    const answer = await requiringLinkData(() => this.request(linkId, { type: 'LGET' }));
    // A copy, not a view that would keep the whole received block alive.
    return new Uint8Array(this.expect(answer, 'LNK').linkData);
  }

  /**
   * The link data stored under `linkId` on relay `dest`, fetched by private
   * routing through `route` as `sendVia` sends (`route[0]` is this client's
   * relay): `dest` never sees this client's address. Rejects as `sendVia`
   * does, with RelayError AUTH from `dest` when there is no such link, and
   * ConnectionError VERSION when this client's relay cannot forward or
   * `dest` speaks no version 3.
   *
   * @example
   *   const sealed = await client.getLinkDataVia([client.address], linkRelay, linkId);
   */
  async getLinkDataVia(route: readonly RouteHop[], dest: RelayAddress, linkId: Uint8Array): Promise<Uint8Array> {
    checkLinkId(linkId);
    this.requireVersion(PRIVATE_ROUTING_VERSION, 'private routing');
    const command: Command = { type: 'LGET' };
    const answer = await requiringLinkData(() => this.routes.request(route, dest, { corrId: randomBytes(4), entityId: linkId, command }));
    if (answer.type !== 'LNK') throw new ConnectionError('CLOSED', formatAddress(dest), `unexpected ${answer.type} where LNK was due`);
    return new Uint8Array(answer.linkData);
  }

  /** Pings the relay `dest` through `route`, as `sendVia` would reach it: checks the route end to end. */
  async pingVia(route: readonly RouteHop[], dest: RelayAddress): Promise<void> {
    const answer = await this.routes.request(route, dest, { corrId: randomBytes(4), entityId: EMPTY, command: { type: 'PING' } });
    if (answer.type !== 'PONG') throw new ConnectionError('CLOSED', formatAddress(dest), `unexpected ${answer.type} where PONG was due`);
  }

  async ping(): Promise<void> {
    this.expect(await this.request(EMPTY, { type: 'PING' }), 'PONG');
  }

  /** Closes the connection for good; pending commands fail with CLOSED. */
  async close(): Promise<void> {
    this.closed = true;
    this.closing.abort(new ConnectionError('CLOSED', this.addressText, 'client closed'));
    clearTimeout(this.backoffTimer);
    this.wake?.();
    const t = this.transport;
    if (!t) return;
    await new Promise<void>((resolve) => {
      t.socket.once('close', () => resolve());
      t.socket.end();
      setTimeout(() => t.socket.destroy(), 1000).unref();
    });
  }
}
