/**
 * Messages through one relay: N sender/recipient pairs, each side with its
 * own RelayClient (its own TLS connection), as separate users would have.
 * Per pair the recipient creates a queue, secures it with the sender's key
 * and subscribes; the sender sends signed ~1 KiB messages; the recipient
 * acknowledges each one on delivery (the relay pushes the next only then).
 *
 * Every message body carries the pair, a sequence number and the send time
 * (performance.now() of this process, which is also where it is received),
 * so send-to-delivery latency needs no clock sync, and loss, duplicates and
 * reordering are detected.
 *
 * Load shapes:
 *   closed loop  each pair keeps `window` messages sent-but-undelivered
 *                (within the relay's queue quota): saturation throughput.
 *   open loop    Poisson arrivals at a fixed total rate: latency at a
 *                chosen load.
 *   sequential   one message at a time on one pair: latency with no load
 *                (back to back, or with a pause between messages).
 */
import type { TLSSocket } from 'node:tls';
import { randomBytes } from 'node:crypto';
import { RelayClient } from '../dist/client/relay-client.js';
import { ConnectionError, RelayError } from '../dist/client/errors.js';
import type { ReceivedMessage, RecipientQueue, SenderQueue } from '../dist/client/queues.js';
import { generateSigningKeyPair } from '../dist/crypto/keys.js';
import { BLOCK_SIZE } from '../dist/protocol/block.js';
import { monotonicMicros } from './profile.js';
import { mapLimit, ownCpuSeconds, readCpuSeconds, readMachineBusySeconds, readStorageWriteBytes, sleep, summarize, type Summary } from './stats.js';

/** Body size of every benchmark message. */
export const MESSAGE_SIZE = 1024;
const HEADER = 16; // pair u32 | seq u32 | sent-at f64

interface Pair {
  readonly index: number;
  readonly recipient: RelayClient;
  readonly sender: RelayClient;
  readonly queue: RecipientQueue;
  readonly senderQueue: SenderQueue;
  sent: number;
  failed: number;
  delivered: number;
  /** Sequence number expected next. */
  nextSeq: number;
  timer: NodeJS.Timeout | undefined;
  /** Resolves after the next delivery has been acknowledged (sequential mode). */
  waiter: (() => void) | undefined;
}

type Mode = { kind: 'idle' } | { kind: 'closed'; window: number } | { kind: 'open'; perPairRate: number; maxInFlight: number };

export interface Anomalies {
  /** Deliveries with a sequence number lower than expected (duplicates). */
  duplicates: number;
  /** Deliveries that skipped sequence numbers (loss or reordering). */
  gaps: number;
  /** Sends that failed, by error code. */
  sendErrors: Record<string, number>;
  /** ACKs that failed, by error code. */
  ackErrors: Record<string, number>;
  /** Messages sent but never delivered when the run ended. */
  undelivered: number;
}

export interface ThroughputResult {
  readonly pairs: number;
  readonly connections: number;
  readonly window: number;
  readonly seconds: number;
  readonly messages: number;
  readonly messagesPerSecond: number;
  /** Send-to-delivery latency of messages sent during the window, ms (at saturation, so mostly queueing). */
  readonly latencyMs: Summary;
  /** Blocks clients wrote to the relay, per delivered message (SEND + ACK, batched). */
  readonly blocksInPerMessage: number;
  /** Blocks the relay wrote to clients, per delivered message (OK + MSG + OK, batched). */
  readonly blocksOutPerMessage: number;
  /** Relay process CPU, cores (1.0 = one core fully busy). */
  readonly relayCpu: number;
  /** Benchmark (client) process CPU, cores. */
  readonly clientCpu: number;
  /** CPU used by every other process on the machine, cores (should be ~0: anything else skews the figures). */
  readonly otherCpu: number;
  /** Relay CPU time per delivered message, ms. */
  readonly relayCpuMsPerMessage: number;
  /** Client CPU time per delivered message (both ends: sign SEND, open MSG, sign ACK), ms. */
  readonly clientCpuMsPerMessage: number;
  /** The measured window on CLOCK_MONOTONIC, µs (to match a relay CPU profile). */
  readonly monotonicWindowUs: { readonly from: number; readonly to: number };
  /** Bytes the relay caused to be written to storage, per message (undefined if unreadable). */
  readonly storageBytesPerMessage: number | undefined;
}

export interface OpenLoopResult {
  readonly targetPerSecond: number;
  readonly messagesPerSecond: number;
  readonly seconds: number;
  readonly latencyMs: Summary;
  readonly relayCpu: number;
  readonly clientCpu: number;
  readonly otherCpu: number;
  /** Arrivals skipped because the pair already had too many messages undelivered. */
  readonly skipped: number;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function errorCode(e: unknown): string {
  if (e instanceof RelayError) return e.code;
  if (e instanceof ConnectionError) return `connection ${e.reason}`;
  return e instanceof Error ? e.message : String(e);
}

/** Plaintext bytes written/read on a client's TLS socket (reaches into a private field: benchmark only). */
function socketOf(client: RelayClient): TLSSocket | undefined {
  return (client as unknown as { transport?: { socket: TLSSocket } }).transport?.socket;
}

export class PairHarness {
  private mode: Mode = { kind: 'idle' };
  /** Latency is recorded for messages sent in [recordFrom, recordUntil), whenever they arrive. */
  private recordFrom = Infinity;
  private recordUntil = Infinity;
  private latencies: number[] = [];
  private skipped = 0;
  private readonly filler = randomBytes(MESSAGE_SIZE - HEADER);
  readonly anomalies: Anomalies = { duplicates: 0, gaps: 0, sendErrors: {}, ackErrors: {}, undelivered: 0 };

  private constructor(
    readonly pairs: readonly Pair[],
    private readonly relayPid: number,
  ) {}

  /** Connects 2 × `count` clients and sets up one secured, subscribed queue per pair. */
  static async create(address: string, count: number, relayPid: number): Promise<PairHarness> {
    const options = { reconnect: false, commandTimeoutMs: 30_000 } as const;
    const pairs = await mapLimit(Array.from({ length: count }), 8, async (_, index): Promise<Pair> => {
      const [recipient, sender] = await Promise.all([RelayClient.connect(address, options), RelayClient.connect(address, options)]);
      const senderKeys = generateSigningKeyPair();
      const queue = await recipient.createQueue();
      await recipient.secureQueue(queue, senderKeys.publicKey);
      return {
        index,
        recipient,
        sender,
        queue,
        senderQueue: { relay: queue.relay, senderId: queue.senderId, senderKey: senderKeys.privateKey },
        sent: 0,
        failed: 0,
        delivered: 0,
        nextSeq: 0,
        timer: undefined,
        waiter: undefined,
      };
    });
    const harness = new PairHarness(pairs, relayPid);
    for (const pair of pairs) {
      pair.recipient.on('message', (q, m) => {
        if (hex(q.recipientId) === hex(pair.queue.recipientId)) harness.onMessage(pair, m);
      });
      await pair.recipient.subscribe(pair.queue);
    }
    return harness;
  }

  get connections(): number {
    return this.pairs.length * 2;
  }

  private inFlight(pair: Pair): number {
    return pair.sent - pair.failed - pair.delivered;
  }

  private totalDelivered(): number {
    return this.pairs.reduce((n, p) => n + p.delivered, 0);
  }

  /** Plaintext bytes clients wrote to the relay and read from it, so far. */
  private wireBytes(): { toRelay: number; fromRelay: number } {
    let toRelay = 0;
    let fromRelay = 0;
    for (const p of this.pairs) {
      for (const c of [p.recipient, p.sender]) {
        const s = socketOf(c);
        toRelay += s?.bytesWritten ?? 0;
        fromRelay += s?.bytesRead ?? 0;
      }
    }
    return { toRelay, fromRelay };
  }

  private sendOne(pair: Pair): void {
    const body = Buffer.allocUnsafe(MESSAGE_SIZE);
    body.writeUInt32BE(pair.index, 0);
    body.writeUInt32BE(pair.sent, 4);
    body.writeDoubleBE(performance.now(), 8);
    this.filler.copy(body, HEADER);
    pair.sent++;
    pair.sender.send(pair.senderQueue, body).catch((e: unknown) => {
      pair.failed++;
      const code = errorCode(e);
      this.anomalies.sendErrors[code] = (this.anomalies.sendErrors[code] ?? 0) + 1;
    });
  }

  private onMessage(pair: Pair, m: ReceivedMessage): void {
    const now = performance.now();
    const body = Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength);
    const seq = body.readUInt32BE(4);
    const sentAt = body.readDoubleBE(8);
    if (seq < pair.nextSeq) this.anomalies.duplicates++;
    else {
      if (seq > pair.nextSeq) this.anomalies.gaps++;
      pair.nextSeq = seq + 1;
      pair.delivered++;
      if (sentAt >= this.recordFrom && sentAt < this.recordUntil) this.latencies.push(now - sentAt);
    }
    const acked = pair.recipient.ack(pair.queue, m.msgId).catch((e: unknown) => {
      const code = errorCode(e);
      this.anomalies.ackErrors[code] = (this.anomalies.ackErrors[code] ?? 0) + 1;
    });
    if (pair.waiter) {
      const w = pair.waiter;
      pair.waiter = undefined;
      void acked.then(w);
    }
    if (this.mode.kind === 'closed') this.pump(pair);
  }

  private pump(pair: Pair): void {
    const mode = this.mode;
    if (mode.kind !== 'closed') return;
    while (this.inFlight(pair) < mode.window) this.sendOne(pair);
  }

  private scheduleArrival(pair: Pair): void {
    const mode = this.mode;
    if (mode.kind !== 'open') return;
    // Poisson arrivals: exponential gaps with mean 1 / rate.
    const gapMs = (-Math.log(1 - Math.random()) / mode.perPairRate) * 1000;
    pair.timer = setTimeout(() => {
      if (this.mode.kind !== 'open') return;
      if (this.inFlight(pair) < mode.maxInFlight) this.sendOne(pair);
      else this.skipped++;
      this.scheduleArrival(pair);
    }, gapMs);
  }

  private stop(): void {
    this.mode = { kind: 'idle' };
    for (const p of this.pairs) clearTimeout(p.timer);
  }

  /** Waits (at most `timeoutMs`) until everything sent has been delivered. */
  private async drain(timeoutMs = 15_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline && this.pairs.some((p) => this.inFlight(p) > 0)) await sleep(20);
    await sleep(50); // let the last ACKs go out
  }

  private startRecording(): void {
    this.latencies = [];
    this.recordFrom = performance.now();
    this.recordUntil = Infinity;
  }

  private stopRecording(): void {
    this.recordUntil = performance.now();
  }

  /**
   * One message at a time on pair 0, `count` times: latency without load.
   * The next message goes as soon as the previous one's ACK is answered, or
   * `pauseMs` after that (an idle relay and clients answer slower than warm ones).
   */
  async sequential(count: number, pauseMs = 0): Promise<Summary> {
    const pair = this.pairs[0]!;
    this.startRecording();
    for (let i = 0; i < count; i++) {
      if (i > 0 && pauseMs > 0) await sleep(pauseMs);
      const delivered = new Promise<void>((resolve) => (pair.waiter = resolve));
      this.sendOne(pair);
      await Promise.race([delivered, sleep(5000)]);
    }
    this.stopRecording();
    await this.drain();
    return summarize(this.latencies);
  }

  /** Closed loop: every pair keeps `window` messages undelivered; measures the middle `measureMs`. */
  async closedLoop(o: { window: number; warmupMs: number; measureMs: number }): Promise<ThroughputResult> {
    this.mode = { kind: 'closed', window: o.window };
    for (const p of this.pairs) this.pump(p);
    await sleep(o.warmupMs);
    const d0 = this.totalDelivered();
    const w0 = this.wireBytes();
    const r0 = readCpuSeconds(this.relayPid);
    const c0 = ownCpuSeconds();
    const m0 = readMachineBusySeconds();
    const s0 = readStorageWriteBytes(this.relayPid);
    const t0 = performance.now();
    const mono0 = monotonicMicros();
    this.startRecording();
    await sleep(o.measureMs);
    const d1 = this.totalDelivered();
    const w1 = this.wireBytes();
    const mono1 = monotonicMicros();
    const seconds = (performance.now() - t0) / 1000;
    const relayCpu = (readCpuSeconds(this.relayPid) - r0) / seconds;
    const clientCpu = (ownCpuSeconds() - c0) / seconds;
    const otherCpu = Math.max(0, (readMachineBusySeconds() - m0) / seconds - relayCpu - clientCpu);
    const s1 = readStorageWriteBytes(this.relayPid);
    this.stopRecording();
    this.stop();
    await this.drain();
    const messages = d1 - d0;
    return {
      pairs: this.pairs.length,
      connections: this.connections,
      window: o.window,
      seconds,
      messages,
      messagesPerSecond: messages / seconds,
      latencyMs: summarize(this.latencies),
      blocksInPerMessage: (w1.toRelay - w0.toRelay) / BLOCK_SIZE / messages,
      blocksOutPerMessage: (w1.fromRelay - w0.fromRelay) / BLOCK_SIZE / messages,
      relayCpu,
      clientCpu,
      otherCpu,
      relayCpuMsPerMessage: (relayCpu * seconds * 1000) / messages,
      clientCpuMsPerMessage: (clientCpu * seconds * 1000) / messages,
      monotonicWindowUs: { from: mono0, to: mono1 },
      storageBytesPerMessage: s0 !== undefined && s1 !== undefined ? (s1 - s0) / messages : undefined,
    };
  }

  /** Open loop: Poisson arrivals totalling `ratePerSecond`, spread evenly over the pairs. */
  async openLoop(o: { ratePerSecond: number; warmupMs: number; measureMs: number }): Promise<OpenLoopResult> {
    this.skipped = 0;
    this.mode = { kind: 'open', perPairRate: o.ratePerSecond / this.pairs.length, maxInFlight: 64 };
    for (const p of this.pairs) this.scheduleArrival(p);
    await sleep(o.warmupMs);
    const d0 = this.totalDelivered();
    const r0 = readCpuSeconds(this.relayPid);
    const c0 = ownCpuSeconds();
    const m0 = readMachineBusySeconds();
    const t0 = performance.now();
    this.startRecording();
    await sleep(o.measureMs);
    const d1 = this.totalDelivered();
    const seconds = (performance.now() - t0) / 1000;
    const relayCpu = (readCpuSeconds(this.relayPid) - r0) / seconds;
    const clientCpu = (ownCpuSeconds() - c0) / seconds;
    const otherCpu = Math.max(0, (readMachineBusySeconds() - m0) / seconds - relayCpu - clientCpu);
    this.stopRecording();
    this.stop();
    // Messages sent in the window but delivered after it still count towards the latency figures.
    await this.drain();
    return {
      targetPerSecond: o.ratePerSecond,
      messagesPerSecond: (d1 - d0) / seconds,
      seconds,
      latencyMs: summarize(this.latencies),
      relayCpu,
      clientCpu,
      otherCpu,
      skipped: this.skipped,
    };
  }

  async close(): Promise<void> {
    this.stop();
    this.anomalies.undelivered = this.pairs.reduce((n, p) => n + this.inFlight(p), 0);
    await Promise.all(this.pairs.flatMap((p) => [p.recipient.close(), p.sender.close()]));
  }
}
