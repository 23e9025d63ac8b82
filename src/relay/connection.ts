/**
 * One client connection on the relay: the Nightjar handshake, then a loop
 * of blocks in and blocks out. Blocks are processed strictly in order;
 * responses to one block, and pushes made meanwhile, are batched into as
 * few blocks as possible. A malformed block or command gets an ERR and the
 * connection carries on; only a broken handshake closes it.
 */
import type { TLSSocket } from 'node:tls';
import { BlockReader } from '../protocol/block-reader.js';
import { batchCost, BLOCK_SIZE, decodeBatch, encodeBatch, MAX_BATCH, MAX_CONTENT_LENGTH, packBatches, padBlock, unpadBlock } from '../protocol/block.js';
import { encodeResponse, type Response } from '../protocol/commands.js';
import { ProtocolError } from '../protocol/errors.js';
import { decodeClientHello, encodeRelayHello } from '../protocol/handshake.js';
import {
  CHANNEL_BINDING_LABEL,
  decodeTransmission,
  encodeTransmission,
  encodeTransmissionBody,
  SESSION_BINDING_LENGTH,
} from '../protocol/transmission.js';
import { SESSION_MAC_VERSION, SUPPORTED_VERSIONS } from '../protocol/version.js';
import type { RelayConfig } from './config.js';
import { BUSY_RETRY_MS, type ClientSession, type Dispatcher } from './dispatcher.js';
import type { RelayLogger } from './log.js';
import { SessionMacKeys } from './mac-keys.js';
import { TokenBucket } from './rate-limit.js';
import { replaySource } from './replay-cache.js';
import type { RelayCounters } from './stats.js';

/** Blocks waiting to be processed before the socket stops reading (back-pressure). */
const MAX_QUEUED_BLOCKS = 16;
const EMPTY = new Uint8Array(0);
/**
 * Answers waiting to be written (64 blocks, 1 MiB) before the connection
 * stops taking commands and pushes. Checked before every command and every
 * push, so it is exceeded by at most what one block of commands and one
 * push add after the last check (docs/protocol.md §12).
 */
export const MAX_BUFFERED_OUTPUT = 64 * BLOCK_SIZE;

type State = 'handshake' | 'ready' | 'closed';

/** Commands that run concurrently with their neighbours of the same kind: SEND, and forwarding round trips. */
const CONCURRENT_TAGS = ['SEND ', 'PFWD ', 'RFWD '].map((t) => Buffer.from(t));

const SEND_TAG = Buffer.from('SEND ');

/** Whether a raw transmission carries SEND, PFWD or RFWD, judged without a full parse. */
function isConcurrent(t: Uint8Array): boolean {
  try {
    const { command } = decodeTransmission(t);
    return CONCURRENT_TAGS.some((tag) => tag.equals(command.subarray(0, tag.length)));
  } catch {
    return false;
  }
}

/** Sees every block after the handshake, decrypted, as it arrives or leaves (debugging and tests). */
export type BlockTrace = (direction: 'in' | 'out', block: Uint8Array) => void;

export class RelayConnection implements ClientSession {
  readonly binding: Uint8Array;
  /** Whom this connection's replay-cache entries are charged to: its IP address (IPv6: its /64). */
  readonly source: string;
  /** Negotiated in the client hello. */
  version = SUPPORTED_VERSIONS.max;
  /** MAC keys registered on this session (version 5); they live and die with the connection. */
  macKeys: SessionMacKeys | undefined;
  private state: State = 'handshake';
  private readonly reader = new BlockReader();
  private readonly queue: Uint8Array[] = [];
  private processing = false;
  private outbox: Uint8Array[] = [];
  /** Blocks the outbox will take once packed (packBatches, counted as it fills), and the last one's fill. */
  private outboxBlocks = 0;
  private lastBlockBytes = 0;
  private lastBlockCount = 0;
  private flushScheduled = false;
  /** Pushes waiting for the socket to drain (see ClientSession.congested). */
  private readonly drainWaiters: (() => void)[] = [];
  private readonly bucket: TokenBucket;
  private readonly handshakeTimer: NodeJS.Timeout;

  constructor(
    private readonly socket: TLSSocket,
    private readonly dispatcher: Dispatcher,
    config: RelayConfig,
    private readonly log: RelayLogger,
    private readonly onClose: (c: RelayConnection) => void,
    /** Commands in flight over the whole relay, shared by all connections. */
    private readonly load: { inFlight: number; readonly max: number },
    private readonly trace?: BlockTrace,
    /** Aggregate counts for the operator's stats line (stats.ts). */
    private readonly counters?: RelayCounters,
  ) {
    if (counters) counters.connectionsOpened++;
    this.binding = new Uint8Array(socket.exportKeyingMaterial(SESSION_BINDING_LENGTH, CHANNEL_BINDING_LABEL, Buffer.alloc(0)));
    this.source = replaySource(socket.remoteAddress ?? '');
    this.bucket = new TokenBucket(config.commandRate, config.commandBurst);
    this.handshakeTimer = setTimeout(() => this.close('handshake timeout'), config.handshakeTimeoutSeconds * 1000);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => this.close('socket error'));
    socket.on('close', () => this.close('closed by peer'));
    const routing = dispatcher.forwarder?.routingKey;
    socket.write(
      padBlock(
        encodeRelayHello({
          versions: SUPPORTED_VERSIONS,
          powBits: dispatcher.pow.currentBits(),
          routingKey: routing?.publicKey ?? EMPTY,
          routingKeySig: routing?.signature ?? EMPTY,
        }),
      ),
    );
  }

  private onData(chunk: Buffer): void {
    for (const block of this.reader.push(chunk)) this.queue.push(block);
    if (this.queue.length > MAX_QUEUED_BLOCKS) this.socket.pause();
    void this.drain();
  }

  private async drain(): Promise<void> {
    if (this.processing) return;
    this.processing = true;
    try {
      let block: Uint8Array | undefined;
      while (this.state !== 'closed' && (block = this.queue.shift())) {
        // A client that does not read its answers stops being served (and, with reading
        // paused once its blocks pile up, stops being read): no unbounded buffering.
        await this.outputDrained();
        if (this.state === 'handshake') this.onHello(block);
        else await this.onBlock(block);
        if (this.queue.length <= MAX_QUEUED_BLOCKS / 2 && this.socket.isPaused()) this.socket.resume();
      }
    } catch (e) {
      // A dispatcher failure is a relay bug or a storage fault: never answer OK, drop the connection.
      this.log.error({ err: e instanceof Error ? e.message : String(e) }, 'command failed; closing connection');
      this.close('internal error');
    } finally {
      this.processing = false;
    }
  }

  /** Waits while more than MAX_BUFFERED_OUTPUT bytes of answers are waiting to be written. */
  private async outputDrained(): Promise<void> {
    while (this.state !== 'closed' && this.congested()) {
      if (this.outbox.length > 0 && !this.flushScheduled) this.flush();
      await new Promise<void>((resolve) => {
        const done = (): void => {
          this.socket.off('drain', done);
          this.socket.off('close', done);
          resolve();
        };
        this.socket.once('drain', done);
        this.socket.once('close', done);
      });
    }
  }

  private onHello(block: Uint8Array): void {
    try {
      const hello = decodeClientHello(unpadBlock(block));
      if (hello.version < SUPPORTED_VERSIONS.min || hello.version > SUPPORTED_VERSIONS.max) {
        throw new ProtocolError('VERSION', `unsupported version ${hello.version}`);
      }
      this.version = hello.version;
      if (hello.version >= SESSION_MAC_VERSION) this.macKeys = new SessionMacKeys();
    } catch {
      this.close('bad handshake');
      return;
    }
    clearTimeout(this.handshakeTimer);
    this.state = 'ready';
  }

  private async onBlock(block: Uint8Array): Promise<void> {
    this.trace?.('in', block);
    let transmissions: Uint8Array[];
    try {
      transmissions = decodeBatch(block);
    } catch {
      this.respond(EMPTY, EMPTY, { type: 'ERR', code: 'BLOCK' });
      return;
    }
    // Commands take effect in block order, except that a run of consecutive
    // SENDs is handled together so that storage commits them in one transaction,
    // and forwarded requests (PFWD, RFWD) wait for their round trips together.
    for (let i = 0; i < transmissions.length; ) {
      // The output budget is checked before every command (a run's commands all start at
      // once, so before the run): a block of 255 GETs must not buffer 255 messages. Once it
      // is spent, the rest of the block is refused, not executed.
      if (this.congested()) {
        for (const t of transmissions.slice(i)) this.refuse(t);
        return;
      }
      let j = i + 1;
      if (isConcurrent(transmissions[i]!)) while (j < transmissions.length && isConcurrent(transmissions[j]!)) j++;
      await Promise.all(transmissions.slice(i, j).map((t) => this.onTransmission(t)));
      i = j;
    }
  }

  /** Answers BUSY (with the retry hint) to a command left unexecuted because the output budget is spent. */
  private refuse(bytes: Uint8Array): void {
    const t = this.decodeOrAnswer(bytes);
    if (!t) return;
    this.respond(t.corrId, t.entityId, { type: 'ERR', code: 'BUSY', retryAfterMs: BUSY_RETRY_MS });
  }

  /** The decoded transmission, or null after answering the error a malformed one gets. */
  private decodeOrAnswer(bytes: Uint8Array): ReturnType<typeof decodeTransmission> | null {
    try {
      // Authenticators of 32 and 96 bytes are a syntax error before version 5, as they were.
      return decodeTransmission(bytes, this.version);
    } catch (e) {
      this.respond(EMPTY, EMPTY, { type: 'ERR', code: e instanceof ProtocolError ? e.code : 'CMD_SYNTAX' });
      return null;
    }
  }

  private async onTransmission(bytes: Uint8Array): Promise<void> {
    const t = this.decodeOrAnswer(bytes);
    if (!t) return;
    if (!this.bucket.take() || this.load.inFlight >= this.load.max) {
      this.respond(t.corrId, t.entityId, { type: 'ERR', code: 'BUSY', retryAfterMs: BUSY_RETRY_MS });
      return;
    }
    this.load.inFlight++;
    try {
      const response = await this.dispatcher.handle(this, t);
      if (this.counters) {
        this.counters.commands++;
        if (response.type === 'OK' && SEND_TAG.equals(t.command.subarray(0, SEND_TAG.length))) this.counters.messagesIn++;
      }
      this.respond(t.corrId, t.entityId, response);
    } finally {
      this.load.inFlight--;
    }
  }

  push(entityId: Uint8Array, response: Response): void {
    this.respond(EMPTY, entityId, response);
  }

  /** Bytes of answers waiting: what the socket holds unwritten, and the outbox as the blocks it will fill. */
  bufferedOutput(): number {
    return this.socket.writableLength + this.outboxBlocks * BLOCK_SIZE;
  }

  congested(): boolean {
    return this.bufferedOutput() > MAX_BUFFERED_OUTPUT;
  }

  whenDrained(callback: () => void): void {
    this.drainWaiters.push(callback);
    if (this.drainWaiters.length === 1) {
      this.socket.once('drain', () => {
        for (const cb of this.drainWaiters.splice(0)) cb();
      });
    }
  }

  private respond(corrId: Uint8Array, entityId: Uint8Array, response: Response): void {
    if (this.state === 'closed') return;
    if ((response.type === 'MSG' || response.type === 'LENT') && this.counters) this.counters.messagesOut++;
    else if (response.type === 'ERR') this.counters?.error(response.code);
    const t = encodeTransmission(EMPTY, encodeTransmissionBody(corrId, entityId, encodeResponse(response)));
    this.outbox.push(t);
    // Counted as packBatches will pack it: a new block when this one would overflow.
    const cost = batchCost(t);
    if (this.outboxBlocks === 0 || this.lastBlockBytes + cost > MAX_CONTENT_LENGTH || this.lastBlockCount === MAX_BATCH) {
      this.outboxBlocks++;
      this.lastBlockBytes = 1;
      this.lastBlockCount = 0;
    }
    this.lastBlockBytes += cost;
    this.lastBlockCount++;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.state === 'closed' || this.outbox.length === 0) return;
    const out = this.outbox;
    this.outbox = [];
    this.outboxBlocks = 0;
    this.socket.cork();
    for (const batch of packBatches(out)) {
      const block = encodeBatch(batch);
      this.trace?.('out', block);
      this.socket.write(block);
    }
    this.socket.uncork();
  }

  close(reason: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.handshakeTimer);
    this.log.debug({ reason }, 'connection closed');
    this.dispatcher.closeSession(this);
    this.macKeys?.clear();
    this.socket.destroy();
    this.onClose(this);
  }
}
