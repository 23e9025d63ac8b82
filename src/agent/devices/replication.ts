/**
 * The agent on a profile with several devices (docs/devices.md §3): owns
 * the operations registry, the device tables and, once the profile has a
 * device group, the replica that reads and appends the device log. The
 * agent's own operations live here:
 *
 *   agent.recv     messages a device received: applied as receiving them
 *                  is on one device; the device that received them
 *                  acknowledges them once applied
 *   agent.sent     outbox rows the relays accepted: they leave the outbox,
 *                  show as sent, a retired queue goes
 *   agent.receipt  a receipt due on a connection: queued as RCPT
 *
 * Everything that applies an event runs in the agent's serial chain, as
 * pushed messages do on one device, so an event never lands in the middle
 * of a delivery or a receive round. A step of that chain must therefore
 * never wait for an operation it proposes (the operation's own turn comes
 * after it): it proposes and goes on, and what follows the operation
 * (an ACK) hangs on the operation's promise.
 */
import { Reader, Writer } from '../../protocol/codec.js';
import {
  decodeAdmit,
  decodeIds,
  decodeKeys,
  decodeReceived,
  decodeRemoval,
  encodeAdmit,
  encodeIds,
  encodeKeys,
  encodeRemoval,
  removalAad,
  type Removal,
  type RemovalCopy,
} from './operation-args.js';
import type { ReceivedMessage } from '../../client/queues.js';
import type { AgentStore, RcvQueueRow } from '../agent-store.js';
import type { Determinism } from '../determinism.js';
import type { AgentLogger } from '../log.js';
import { errorFields } from '../log.js';
import { DeviceStore, type DeviceGroupRow } from './device-store.js';
import { DeviceLogError, entryKey, openEntry } from './log-entry.js';
import { EventAssembler } from './event-assembler.js';
import { decodeOperation, encodeOperation, Operations, type OperationApply } from './operations.js';
import {
  CHUNK_KEY_LENGTH,
  decodeMailbox,
  decodeResyncOffer,
  decodeResyncRequest,
  encodeMailbox,
  encodeResyncOffer,
  encodeResyncRequest,
  openChunk,
  RESYNC_NONCE_LENGTH,
  resyncAad,
  sealChunk,
  type ResyncOffer,
  type ResyncRequest,
} from './resync.js';
import { relayAddress } from '../relay-sessions.js';
import { Replica, ReplicaHaltedError, resealPending, type DeviceLogTransport } from './replica.js';
import { logQueues, relayLogTransport, type LogAppend } from './log-transport.js';
import { restoreSnapshot, takeSnapshot, type SnapshotRewrite } from './snapshot.js';
import { decodeEvent, EventKind, MAX_DEVICE_NUMBER } from './event.js';
import { GROUP_KEY_LENGTH } from './log-entry.js';
import type { RelayClient } from '../../client/relay-client.js';
import type { RecipientQueue } from '../../client/queues.js';
import { generateSigningKeyPair } from '../../crypto/keys.js';
import { openSealed, sealTo, type SealRecipient } from '../../crypto/hybrid-seal.js';
import { CryptoError } from '../../crypto/errors.js';
import { ProtocolError } from '../../protocol/errors.js';
import { readGroup, writeGroup } from './group-codec.js';
import { randomBytes } from '../../crypto/random.js';
import { AgentError, type DeviceInfo } from '../agent-api.js';
import { withDeadline } from '../deadline.js';

/** What a new device starts from (docs/devices.md §6): the group with its number in it, where to read the log from, and the profile there. */
export interface DeviceInvite {
  readonly group: DeviceGroupRow;
  readonly resumeFrom: number;
  readonly snapshot: readonly Uint8Array[];
}

/**
 * What the relays accepted is told to the other devices at most this long
 * after (one agent.sent for everything accepted meanwhile): a message
 * shows as sent on the other devices a moment later, and a burst costs
 * one append, not one per message.
 */
const SENT_GATHER_MS = 1000;
/** Row IDs per agent.sent event (8 bytes each, well inside one entry). */
const MAX_SENT_PER_EVENT = 1500;

/** Snapshot chunks fit an agent message with room to spare (linking sends them as such). */
const SNAPSHOT_CHUNK_LENGTH = 12 * 1024;

/** How long a device that asked for a fresh copy waits to read its mailbox. */
const RESYNC_READ_MS = 60_000;

/** Builds the transport to a group's log (the relay's log queue; a stand-in in unit tests). */
export type DeviceLogTransportFactory = (group: DeviceGroupRow) => DeviceLogTransport;

/**
 * Logs a proposal that will not be applied here: at debug when only this
 * device's closing stopped it (shutting down is no fault, and what it
 * carried is taken up again at the next start), as a warning otherwise.
 */
export function logUnapplied(log: AgentLogger, error: unknown, message: string): void {
  const closing = error instanceof ReplicaHaltedError && error.code === 'CLOSED';
  log[closing ? 'debug' : 'warn']({ err: errorFields(error) }, message);
}

/** What applying received messages takes from the receiving side: process one, in its own savepoint. */
export type ProcessReceived = (rcv: RcvQueueRow, message: ReceivedMessage) => void;

export interface ReplicationParts {
  readonly store: AgentStore;
  readonly determinism: Determinism;
  readonly log: AgentLogger;
  /** The agent's serial chain. */
  readonly serial: <T>(fn: () => Promise<T>) => Promise<T>;
  /** The device log's transport; default: the relay's log queue (log-transport.ts) over `session`. */
  readonly transport?: DeviceLogTransportFactory;
  /** A session to `relay` on the device-log lane of the relay pool. */
  readonly session: (relay: string) => Promise<RelayClient>;
  /** How an entry is appended: routed as a SEND (private routing by default). Default: on `session`. */
  readonly append?: LogAppend;
  /** After an event of this device is applied: deliver what it queued. */
  readonly kick: () => void;
  /** Another device removed this one (docs/devices.md §7): stop talking to relays. */
  readonly removed?: () => void;
}

export class Replication {
  readonly operations: Operations;
  readonly devices: DeviceStore;
  private replica: Replica | undefined;
  private starting: Promise<void> | undefined;
  /** Outbox rows this device sent whose `agent.sent` is not applied yet: not sent again meanwhile. */
  private readonly sentHere = new Set<number>();
  /** Rows the relays accepted, not yet proposed as agent.sent. */
  private readonly sentToTell: number[] = [];
  private sentTimer: NodeJS.Timeout | undefined;
  /** What the event just applied asks of the replica once its transaction is committed: move to the new log, or stop. */
  private afterApply: 'switch' | 'removed' | 'renumbered' | undefined;
  /** The transport of the current log, closed when the group moves to a new one. */
  private transportNow: DeviceLogTransport | undefined;
  /** Stopped on a gap: the request for a fresh copy this device made (docs/devices.md §8), and whether one is being restored. */
  private resyncAsked: Uint8Array | undefined;
  private resyncing = false;
  /** Puts together the events after a gap, where the answer to the request is looked for. */
  private afterGapEvents = new EventAssembler();
  /** A request for a fresh copy this device answers once the event's transaction is committed. */
  private toAnswer: ResyncRequest | undefined;

  constructor(private readonly p: ReplicationParts) {
    this.devices = new DeviceStore(p.store.db, (fn) => p.store.tx(fn));
    this.operations = new Operations(p.determinism, (fn) => p.store.tx(fn));
  }

  /** Whether the profile has a device group: then operations go through the log. */
  get active(): boolean {
    return this.devices.group() !== undefined;
  }

  /** Whether this device does the group's shared upkeep now (Replica.leads); false before it reads the log. */
  get leads(): boolean {
    return this.replica?.leads() === true;
  }

  /** This device's number in its group, or undefined on a profile with one device. */
  get device(): number | undefined {
    return this.devices.group()?.device;
  }

  register(name: string, apply: OperationApply): void {
    this.operations.register(name, apply);
  }

  /** Applies or proposes an operation (operations.ts); with a group, starts reading the log first if it is not yet. */
  async operate(name: string, args: Uint8Array): Promise<unknown> {
    if (this.active) {
      this.refuseIfRemoved();
      await this.ensureStarted();
      this.refuseIfGap();
      // The gap may show only while the proposal waits for its turn.
      return this.operations.operate(name, args).catch((e: unknown) => {
        this.refuseIfGap();
        throw e;
      });
    }
    return this.operations.operate(name, args);
  }

  /** When and by which device this one was removed, if it was (docs/devices.md §7). */
  removal(): { at: number; by: number; byName: string | undefined } | undefined {
    const r = this.devices.removal();
    return r && { ...r, byName: this.devices.members().find((m) => m.device === r.by)?.name };
  }

  /**
   * Whether this device must be linked again before it can go on: another
   * device removed it, or it was away longer than the log keeps entries
   * (docs/devices.md §8).
   */
  get needsRelink(): boolean {
    return this.devices.removal() !== undefined || this.gap() !== undefined;
  }

  /** The GAP this device's replica stopped on, if it did. */
  private gap(): DeviceLogError | undefined {
    const halted = this.replica?.haltedBy;
    return halted instanceof DeviceLogError && halted.code === 'GAP' ? halted : undefined;
  }

  /** AgentError DEVICE_LOG_GAP for a device that stopped on a gap in the log: what it missed, and how to go on. */
  private refuseIfGap(): void {
    const gap = this.gap();
    if (!gap) return;
    const since = this.devices.lastHeard().get(this.device ?? 0);
    throw new AgentError(
      'DEVICE_LOG_GAP',
      `this device was away longer than the relay keeps your device log (${gap.message}${since ? `; its copy of the profile is as of ${new Date(since).toISOString()}` : ''}): ` +
        'what your other devices did meanwhile cannot reach it. It has asked them for a fresh copy of the profile, which comes as soon as one of them is online; ' +
        'or link it again: on another device run nightjar devices link, then here nightjar devices join LINK (this copy is replaced by theirs, history included), then remove its old number there',
      { cause: gap },
    );
  }

  /** AgentError DEVICE_REMOVED once another device removed this one: nothing it does reaches the others any more. */
  refuseIfRemoved(): void {
    const r = this.removal();
    if (!r) return;
    const by = r.by === 0 ? 'another device' : `device ${r.by}${r.byName ? ` (${r.byName})` : ''}`;
    throw new AgentError('DEVICE_REMOVED', `this device was removed from the profile by ${by} on ${new Date(r.at).toISOString()}; nothing new reaches it`);
  }

  /** Reads the log from where this device left off, if the profile has a group; idempotent. */
  ensureStarted(): Promise<void> {
    const group = this.devices.group();
    if (!group || this.replica || this.devices.removal()) return Promise.resolve();
    this.starting ??= this.start(group);
    return this.starting;
  }

  private async start(group: DeviceGroupRow): Promise<void> {
    const replica = this.newReplica(group);
    this.replica = replica;
    this.operations.attach(replica);
    await replica.start();
    this.announceKeys();
  }

  private newReplica(group: DeviceGroupRow): Replica {
    const raw = this.p.transport ? this.p.transport(group) : relayLogTransport(group, this.p.session, this.p.append);
    this.transportNow = raw;
    let replica: Replica | undefined = undefined;
    // Every event is applied in the agent's serial chain (see the top of this file); what it asks of the replica follows it there.
    const transport: DeviceLogTransport = {
      append: (entry) => raw.append(entry),
      subscribe: (from, onEntry) =>
        raw.subscribe(from, (position, entry) =>
          void this.p.serial(async () => {
            onEntry(position, entry);
            if (this.replica === replica) await this.afterEvent();
          }),
        ),
      ...(raw.trim ? { trim: (before: number) => raw.trim!(before) } : {}),
    };
    replica = new Replica({
      transport,
      store: this.devices,
      entryKey: entryKey(new Uint8Array(group.group_key)),
      generation: group.generation,
      device: group.device,
      apply: (event, context) => {
        const out = this.operations.applier(event, context);
        if (context.mine) this.p.kick();
        return out;
      },
      clock: this.p.determinism.clock,
      members: () => this.devices.currentMembers(),
      onProblem: (problem) => {
        if (problem.type !== 'halted') return this.p.log.warn({ position: problem.position, err: errorFields(problem.error) }, 'a device-log entry was skipped');
        this.p.log.error({ position: problem.position, err: errorFields(problem.error) }, 'this device stopped applying its device log');
        if (problem.error instanceof DeviceLogError && problem.error.code === 'GAP') this.askForCopy(replica!);
      },
      afterGap: (position, entry) => this.lookForCopy(group, position, entry),
    });
    return replica;
  }

  // ---- a fresh copy after a gap (docs/devices.md §8) ----

  /** Stopped on a gap: asks the other devices for a fresh copy of the profile (devices.resync), once per start. */
  private askForCopy(replica: Replica): void {
    if (this.resyncAsked || this.device === undefined) return;
    const nonce = randomBytes(RESYNC_NONCE_LENGTH);
    this.resyncAsked = nonce;
    this.afterGapEvents = new EventAssembler();
    replica
      .announce(EventKind.OP, encodeOperation('devices.resync', encodeResyncRequest({ device: this.device, nonce })))
      .catch((e: unknown) => this.p.log.warn({ err: errorFields(e) }, 'could not ask the other devices for a fresh copy'));
  }

  /** An entry after the gap: the answer to this device's request, if it is one. */
  private lookForCopy(group: DeviceGroupRow, position: number, entry: Uint8Array): void {
    if (!this.resyncAsked || this.resyncing) return;
    let offer: ResyncOffer;
    try {
      const done = this.afterGapEvents.add(position, openEntry(entryKey(new Uint8Array(group.group_key)), group.generation, entry));
      if (!done) return;
      const event = decodeEvent(done.bytes);
      if (event.kind !== EventKind.OP) return;
      const op = decodeOperation(event.body);
      if (op.name !== 'devices.resync.offer') return;
      offer = decodeResyncOffer(op.args);
    } catch {
      return; // not an entry this device can read, or not the answer
    }
    if (offer.device !== this.device || Buffer.compare(Buffer.from(offer.nonce), Buffer.from(this.resyncAsked)) !== 0) return;
    this.resyncing = true;
    this.restoreCopy(group, offer)
      .catch((e: unknown) => this.p.log.error({ err: errorFields(e) }, 'could not restore the fresh copy of the profile; it asks again at the next start'))
      .finally(() => (this.resyncing = false));
  }

  /** Reads the mailbox an offer names, restores the copy in it, and reads the log again from where the copy ends. */
  private async restoreCopy(group: DeviceGroupRow, offer: ResyncOffer): Promise<void> {
    const keys = this.devices.selfKeys();
    if (!keys) throw new AgentError('DEVICE_GROUP', 'this device has no keys to open the copy with');
    const mailbox = decodeMailbox(openSealed(keys, offer.sealed, resyncAad(group.generation, offer.device, offer.nonce)));
    const client = await this.p.session(mailbox.relay);
    const queue = { relay: relayAddress(mailbox.relay), ...mailbox.queue };
    const sealed: Uint8Array[] = [];
    await withDeadline(
      new Promise<void>((resolve, reject) => {
        client
          .subscribeLog(queue, 1, (e) => {
            sealed.push(e.body);
            if (sealed.length === mailbox.chunkCount) resolve();
          })
          .then(() => (mailbox.chunkCount === 0 ? resolve() : undefined), reject);
      }),
      performance.now() + RESYNC_READ_MS,
      'the copy’s mailbox',
    ).finally(() => client.forget(queue));
    const chunks = sealed.map((s, i) => openChunk(mailbox.chunkKey, i, s));
    const old = this.replica;
    this.p.store.tx(() => {
      restoreSnapshot(this.p.store.db, chunks);
      this.devices.setApplied(mailbox.resumeFrom - 1, mailbox.resumeFrom);
    });
    this.p.store.forgetCached();
    await client.deleteQueue(queue).catch(() => undefined);
    old?.close();
    this.transportNow?.close?.();
    this.replica = undefined;
    this.starting = undefined;
    this.resyncAsked = undefined;
    this.p.log.warn({ resumeFrom: mailbox.resumeFrom }, 'this device was away longer than its device log is kept: it took a fresh copy of the profile from another device');
    await this.ensureStarted();
    this.p.kick();
  }

  /** After devices.resync from another device: this one, if it answers for the group, sends it a fresh copy. */
  private async answerCopy(request: ResyncRequest): Promise<void> {
    const to = this.devices.memberKeys(request.device);
    if (!to) return; // a device that never gave keys cannot be sent anything sealed
    // In the serial chain, where events are applied: the copy is the profile right after the request.
    const { group, resumeFrom, chunks } = await this.p.serial(async () => {
      const resumeFrom = this.devices.resumeFrom();
      return { group: this.devices.group()!, resumeFrom, chunks: takeSnapshot(this.p.store.db, resumeFrom - 1, SNAPSHOT_CHUNK_LENGTH) };
    });
    // The mailbox is a log queue like the group's own (an ordinary queue holds too few messages for a large profile).
    const { group: box, client } = await this.newLog(group.log_relay, group.generation);
    const chunkKey = randomBytes(CHUNK_KEY_LENGTH);
    const { recipient, sender } = logQueues(box);
    for (const [i, chunk] of chunks.entries()) await client.send(sender, sealChunk(chunkKey, i, chunk));
    const mailbox = encodeMailbox({
      relay: group.log_relay,
      queue: { recipientId: recipient.recipientId, senderId: recipient.senderId, recipientKey: recipient.recipientKey, queueKey: recipient.queueKey },
      chunkKey,
      chunkCount: chunks.length,
      resumeFrom,
    });
    const sealed = sealTo(to, mailbox, resyncAad(group.generation, request.device, request.nonce));
    await this.operations.operate('devices.resync.offer', encodeResyncOffer({ ...request, sealed }));
    this.p.log.info({ device: request.device }, 'sent a fresh copy of the profile to a device that was away too long');
  }

  /**
   * After an event that moved the group to a new log (a removal): this
   * device reads the new one from its start, and appends there what it had
   * proposed and not seen applied (sealed again in the removal's
   * transaction); whoever waited for those gets their results from there.
   * Or, if the removal was of this device, it stops.
   */
  private async afterEvent(): Promise<void> {
    const answer = this.toAnswer;
    this.toAnswer = undefined;
    // Not awaited: it takes its copy in the serial chain this runs in, then talks to the relay.
    if (answer) void this.answerCopy(answer).catch((e: unknown) => this.p.log.warn({ err: errorFields(e) }, 'could not send a fresh copy to a device that asked'));
    const what = this.afterApply;
    this.afterApply = undefined;
    if (what === undefined) return;
    const old = this.replica!;
    const oldTransport = this.transportNow;
    if (what === 'removed') {
      old.close();
      oldTransport?.close?.();
      this.p.log.info('another device removed this one from the profile: it stops reading the device log and its queues');
      this.p.removed?.();
      return;
    }
    // A new log, or (an imported copy admitted under its own number) the same log read as another device.
    const next = this.newReplica(this.devices.group()!);
    old.handOverTo(next);
    oldTransport?.close?.();
    this.replica = next;
    this.operations.attach(next);
    try {
      await next.start();
    } catch (e) {
      this.p.log.error({ err: errorFields(e) }, 'could not read the device log’s new generation');
    }
  }

  /**
   * A device of a group made before device keys existed gives its public
   * keys (devices.keys), so that a removal can seal the new log to it.
   */
  private announceKeys(): void {
    const here = this.device;
    if (here === undefined || this.devices.memberKeys(here)) return;
    const keys = this.devices.ensureSelfKeys();
    this.operations.operate('devices.keys', encodeKeys(keys)).catch((e: unknown) => logUnapplied(this.p.log, e, 'could not give this device’s keys to the others'));
  }

  /**
   * Resolves once this device has applied everything on the log up to
   * now: a SEEN of its own, appended now, has come back (a one-shot command
   * shows what the other devices did; there is no other way to learn
   * where the log ends).
   */
  async caughtUp(): Promise<void> {
    if (!this.active) return;
    this.refuseIfRemoved();
    await this.ensureStarted();
    this.refuseIfGap();
    try {
      await this.replica!.propose(EventKind.SEEN, new Uint8Array(0));
    } catch (e) {
      // The gap may show only now, while reading up to the SEEN.
      this.refuseIfGap();
      throw e;
    }
  }

  close(): void {
    if (this.sentTimer) clearTimeout(this.sentTimer);
    this.sentTimer = undefined;
    this.replica?.close();
  }

  /**
   * Makes this profile the first device of a device group (docs/devices.md
   * §6, step 3): a log queue on `relay`, secured with a fresh sender key, a
   * random group key, generation 1, this device number 1. What waits in the
   * outbox is this device's to deliver.
   */
  async createGroup(relay: string, deviceName: string): Promise<void> {
    if (this.active) throw new AgentError('DEVICE_GROUP', 'this profile already has several devices');
    const { group } = await this.newLog(relay, 1);
    this.p.store.tx(() => {
      this.devices.setGroup({ ...group, device: 1 });
      const keys = this.devices.ensureSelfKeys();
      this.devices.addMember({ device: 1, name: deviceName, dh_public: Buffer.from(keys.dhPublic), kem_public: Buffer.from(keys.kemPublic), added_at: this.p.determinism.clock(), removed_at: null });
      this.p.store.assignOutbox(1);
    });
  }

  // ---- the agent's own operations ----

  /**
   * Tells the other devices this one is going away (devices.away), so
   * they read the queues it read at once instead of after LEAVE_ENDED_MS;
   * waits at most `timeoutMs` for the log to have it.
   */
  async announceAway(timeoutMs: number): Promise<void> {
    if (!this.replica || this.replica.haltedBy !== undefined) return;
    // What the relays accepted goes on the log before this device leaves.
    const leaving = Promise.all([this.sentNow(), this.operations.operate('devices.away', new Uint8Array(0))]);
    await withDeadline(leaving, performance.now() + timeoutMs, 'the device log').catch(() => undefined);
  }

  /**
   * Adds a device to the group (making the group first, on `relay`, if
   * the profile has none): `devices.add` names it and gives it the next
   * number on every device; then a snapshot of the profile taken right
   * after that event, for the new device to start from (docs/devices.md
   * §6). Sending it to the new device, end-to-end encrypted, is the
   * linking protocol's job.
   */
  async addDevice(name: string, relay: string, thisDeviceName: string, rewrite?: SnapshotRewrite, keys?: SealRecipient): Promise<DeviceInvite> {
    if (!this.active) await this.createGroup(relay, thisDeviceName);
    this.refuseIfRemoved();
    await this.ensureStarted();
    const device = (await (keys
      ? this.operations.operate('devices.admit', encodeAdmit(name, keys))
      : this.operations.operate('devices.add', new TextEncoder().encode(name)))) as number;
    if (device === 0) throw new AgentError('DEVICE_GROUP', `a group holds at most ${MAX_DEVICE_NUMBER} devices`);
    // In the serial chain, where events are applied: nothing moves while the snapshot is read.
    return this.p.serial(async () => {
      const group = this.devices.group()!;
      const resumeFrom = this.devices.resumeFrom();
      return { group: { ...group, device }, resumeFrom, snapshot: takeSnapshot(this.p.store.db, resumeFrom - 1, SNAPSHOT_CHUNK_LENGTH, rewrite) };
    });
  }

  /**
   * Makes this (new, empty) profile the device `invite` names: the
   * snapshot restored, the log read from where the snapshot ends. A device
   * that must be linked again (needsRelink) may join too: its copy is
   * replaced by the snapshot, under its new number.
   */
  joinGroup(invite: DeviceInvite): void {
    const again = this.active && this.needsRelink;
    if (this.active && !again) throw new AgentError('DEVICE_GROUP', 'this profile is a device of a group already');
    if (again) {
      this.replica?.close();
      this.replica = undefined;
      this.starting = undefined;
      this.operations.attach(undefined);
    }
    this.p.store.tx(() => {
      restoreSnapshot(this.p.store.db, invite.snapshot);
      this.devices.setGroup(invite.group);
      this.devices.setApplied(invite.resumeFrom - 1, invite.resumeFrom);
      // What the old copy proposed belonged to its old number and log; whether it was removed, too.
      this.devices.replacePending([]);
      this.devices.clearRemoval();
    });
    this.p.store.forgetCached();
  }

  /** This device's copy of the new group in a removal, or undefined if it has none it can open. */
  private openRemoval(removal: Removal, old: DeviceGroupRow, here: number): DeviceGroupRow | undefined {
    const copy = removal.copies.find((c) => c.device === here);
    const keys = this.devices.selfKeys();
    if (!copy || !keys) return undefined;
    try {
      const next = readGroup(new Reader(openSealed(keys, copy.sealed, removalAad(old.generation, removal.device, here))));
      return next.generation === old.generation + 1 && next.device === here ? next : undefined;
    } catch (e) {
      if (e instanceof CryptoError || e instanceof ProtocolError || e instanceof TypeError) return undefined;
      throw e;
    }
  }

  /**
   * Removes device `device` from the group (docs/devices.md §7): a new log
   * on the same relay with a new group key, sealed to each remaining
   * device's keys in devices.remove on the old log. The removed device
   * reads that it was removed, and nothing after. False if another device
   * removed it first (the new log made here is deleted again).
   */
  async removeDevice(device: number): Promise<boolean> {
    if (!this.active) throw new AgentError('DEVICE_GROUP', 'this profile is on one device');
    this.refuseIfRemoved();
    const here = this.device!;
    if (device === here) throw new AgentError('DEVICE_GROUP', 'a device cannot remove itself: remove it from another of your devices');
    await this.caughtUp();
    const members = this.devices.currentMembers();
    if (!members.includes(device)) throw new AgentError('UNKNOWN_DEVICE', `this profile has no device ${device} (nightjar devices lists them)`);
    const old = this.devices.group()!;
    const { group: next, client, log } = await this.newLog(old.log_relay, old.generation + 1);
    const copies: RemovalCopy[] = [];
    for (const m of members) {
      if (m === device) continue;
      const to = m === here ? this.devices.ensureSelfKeys() : this.devices.memberKeys(m);
      if (!to) continue; // a device that never gave keys cannot follow; it learns so when it applies the removal
      copies.push({ device: m, sealed: sealTo(to, writeGroup(new Writer(), { ...next, device: m }).finish(), removalAad(old.generation, device, m)) });
    }
    const done = (await this.operate('devices.remove', encodeRemoval({ device, copies }))) === true;
    if (!done) await client.deleteQueue(log).catch(() => undefined);
    return done;
  }

  /**
   * Makes this profile a device group of one if it is not one yet (export
   * does, docs/devices.md §10: a copy made from the archive can then tell
   * this one, through the log, that it replaces it). Nothing without a
   * relay to hold the log.
   */
  async ensureGroup(relay: string | undefined, deviceName: string): Promise<void> {
    if (this.active || relay === undefined) return;
    await this.createGroup(relay, deviceName);
    await this.ensureStarted();
  }

  /**
   * A new log queue on `relay`, secured with a fresh sender key, and the
   * group of generation `generation` over it with a fresh group key (its
   * device number 0: each device's own is set where it is used).
   */
  private async newLog(relay: string, generation: number): Promise<{ group: DeviceGroupRow; client: RelayClient; log: RecipientQueue }> {
    const client = await this.p.session(relay);
    const log = await client.createQueue({ mode: 'log' });
    const sender = generateSigningKeyPair();
    await client.secureQueue(log, sender.publicKey);
    const group: DeviceGroupRow = {
      generation,
      device: 0,
      group_key: Buffer.from(randomBytes(GROUP_KEY_LENGTH)),
      log_relay: relay,
      log_recipient_id: Buffer.from(log.recipientId),
      log_sender_id: Buffer.from(log.senderId),
      log_recipient_key: Buffer.from(log.recipientKey),
      log_queue_key: Buffer.from(log.queueKey),
      log_sender_key: Buffer.from(sender.privateKey),
    };
    return { group, client, log };
  }

  /** Whether this is an imported copy that has not yet replaced its original in the group. */
  get takeoverPending(): boolean {
    return this.active && this.devices.superseding() !== undefined;
  }

  /**
   * An imported copy replaces the device it was made from (docs/devices.md
   * §10): it joins the group under a number of its own, with the keys made
   * at import (devices.admit), then removes the original's number
   * (devices.remove: a new log sealed to the others). The original, if it
   * comes back, reads that it was removed and stops; the caller then moves
   * every conversation to new queues. Resumable: each step is on the log.
   * Returns whether a removal was made here.
   */
  async takeOver(): Promise<boolean> {
    const original = this.devices.superseding();
    if (original === undefined || !this.active) return false;
    await this.caughtUp();
    if (this.device === original) {
      const name = this.devices.members().find((m) => m.device === original)?.name ?? 'device';
      const keys = this.devices.ensureSelfKeys();
      if (((await this.operations.operate('devices.admit', encodeAdmit(`${name} (imported)`.slice(0, 100), keys))) as number) === 0) throw new AgentError('DEVICE_GROUP', `a group holds at most ${MAX_DEVICE_NUMBER} devices`);
    }
    const removed = this.devices.currentMembers().includes(original) ? await this.removeDevice(original) : false;
    this.p.store.tx(() => this.devices.clearSuperseding());
    return removed;
  }

  /** The group's devices, removed ones too (none on a profile with one device). */
  list(): DeviceInfo[] {
    const here = this.device;
    const heard = this.devices.lastHeard();
    return this.devices.members().map((m) => ({
      device: m.device,
      name: m.name,
      thisDevice: m.device === here,
      addedAt: m.added_at,
      lastHeardAt: heard.get(m.device),
      removedAt: m.removed_at ?? undefined,
    }));
  }

  /** Renames a device on every device (devices.rename); false if the group has no such device now. */
  async rename(device: number, name: string): Promise<boolean> {
    if (!this.active) throw new AgentError('DEVICE_GROUP', 'this profile is on one device; it gets a name when you link another (nightjar devices link)');
    return (await this.operate('devices.rename', new Writer().u8(device).bytes(new TextEncoder().encode(name)).finish())) as boolean;
  }

  /** Registers agent.recv, agent.sent, agent.receipt and the devices.* operations. */
  registerAgentOperations(o: {
    process: ProcessReceived;
    sent: (ids: readonly number[]) => void;
    receipt: (connectionId: string) => void;
    /** Another device went away: read what it read (changes nothing in the profile). */
    otherAway: () => void;
    /** A device was removed: hold new messages until each ratchet has stepped (in the removal's transaction). */
    holdForRekey: () => void;
  }): void {
    // A new member: one above every number the group has had, removed devices included (a number is never reused); 0 when full.
    const admit = (name: string, keys: SealRecipient | undefined, at: number): number => {
      const next = Math.max(0, ...this.devices.members().map((m) => m.device)) + 1;
      if (next > MAX_DEVICE_NUMBER) return 0;
      const [dh_public, kem_public] = keys ? [Buffer.from(keys.dhPublic), Buffer.from(keys.kemPublic)] : [null, null];
      this.devices.addMember({ device: next, name, dh_public, kem_public, added_at: at, removed_at: null });
      return next;
    };
    this.register('devices.add', (args, context) => admit(new TextDecoder().decode(args), undefined, context.time));
    this.register('devices.admit', (args, context) => {
      const { name, keys } = decodeAdmit(args);
      const next = admit(name, keys, context.time);
      // An imported copy admitting itself takes the new number here, in the same transaction (takeOver).
      if (next !== 0 && context.mine && this.devices.superseding() === this.device) {
        this.devices.becomeDevice(next);
        this.afterApply = 'renumbered';
        context.endGeneration?.();
      }
      return next;
    });
    // Only a device's own event gives its keys, and only once: nobody can swap them later (docs/devices.md §7).
    this.register('devices.keys', (args, context) => this.devices.setMemberKeys(context.author, decodeKeys(args)));
    this.register('devices.remove', (args, context) => {
      const removal = decodeRemoval(args);
      const gone = removal.device;
      if (gone === context.author || !this.devices.removeMember(gone, context.time)) return false;
      // What it was to deliver, the device that removed it delivers (docs/devices.md §3.3).
      this.devices.reassignOutbox(gone, context.author);
      const here = this.device!;
      const old = this.devices.group()!;
      const next = here === gone ? undefined : this.openRemoval(removal, old, here);
      if (!next) {
        // The removed device, or one with no copy it can open (it never gave keys): neither follows to the new log.
        if (here !== gone) this.p.log.error('a device removal left this device without the new device log’s keys: link it again');
        this.devices.markRemoved(context.time, context.author);
        this.afterApply = 'removed';
        context.endGeneration?.();
        return true;
      }
      const pending = resealPending(this.devices, { entryKey: entryKey(new Uint8Array(old.group_key)), generation: old.generation }, { entryKey: entryKey(new Uint8Array(next.group_key)), generation: next.generation });
      this.devices.switchGeneration(next);
      this.devices.replacePending(pending);
      this.afterApply = 'switch';
      context.endGeneration?.();
      o.holdForRekey();
      // The removed device may have read queues: the others read them at once.
      o.otherAway();
      return true;
    });
    // A device that stopped on a gap asks for a fresh copy; the device that answers for the group sends one.
    this.register('devices.resync', (args) => {
      const request = decodeResyncRequest(args);
      if (request.device !== this.device && this.replica?.leadsExcept(request.device) === true) this.toAnswer = request;
    });
    this.register('devices.resync.offer', () => undefined); // read by the asking device only, from after its gap
    this.register('devices.rename', (args) => {
      const r = new Reader(args);
      const device = r.u8('device');
      return this.devices.renameMember(device, new TextDecoder().decode(r.rest()));
    });
    this.register('devices.away', (_args, context) => {
      if (!context.mine) o.otherAway();
    });
    this.register('agent.recv', (args) => {
      const items = decodeReceived(args);
      return items.map((item) => {
        const row = this.p.store.rcvQueueByRecipientId(item.recipientId);
        if (!row) return false;
        try {
          this.p.store.tx(() => o.process(row, item.message));
          return true;
        } catch (e) {
          this.p.log.warn({ err: errorFields(e) }, 'a received message could not be handled; left for the relay to deliver again');
          return false;
        }
      });
    });
    this.register('agent.sent', (args) => {
      const ids = decodeIds(args);
      o.sent(ids);
      for (const id of ids) this.sentHere.delete(id);
    });
    this.register('agent.receipt', (args) => o.receipt(new TextDecoder().decode(args)));
  }

  /** Outbox rows this device delivers (its own, not already sent and waiting for their agent.sent). */
  deliverable<T extends { id: number }>(rows: readonly T[]): T[] {
    return rows.filter((r) => !this.sentHere.has(r.id));
  }

  /**
   * The relays accepted these rows: they are proposed as agent.sent
   * together with what else the relays accept within SENT_GATHER_MS (not
   * awaited: the caller is in the serial chain). Until it is applied this
   * device does not send them again.
   */
  sent(ids: readonly number[]): void {
    for (const id of ids) {
      this.sentHere.add(id);
      this.sentToTell.push(id);
    }
    this.sentTimer ??= setTimeout(() => this.tellSent(), SENT_GATHER_MS);
  }

  private tellSent(): void {
    this.sentTimer = undefined;
    const ids = this.sentToTell.splice(0, MAX_SENT_PER_EVENT);
    if (this.sentToTell.length > 0) this.sentTimer = setTimeout(() => this.tellSent(), 0);
    if (ids.length > 0) void this.proposeSent(ids);
  }

  /**
   * Proposes everything the relays accepted now, not after SENT_GATHER_MS,
   * and resolves once it is applied: a one-shot command then shows its
   * messages as sent. Not from inside the serial chain (see the top).
   */
  async sentNow(): Promise<void> {
    if (this.sentTimer) clearTimeout(this.sentTimer);
    this.sentTimer = undefined;
    const told: Promise<void>[] = [];
    while (this.sentToTell.length > 0) told.push(this.proposeSent(this.sentToTell.splice(0, MAX_SENT_PER_EVENT)));
    await Promise.all(told);
  }

  private async proposeSent(ids: readonly number[]): Promise<void> {
    try {
      await this.operations.operate('agent.sent', encodeIds(ids));
    } catch (e) {
      // Not on the log: sent again after a restart, and the contact drops the copies (docs/devices.md §3.3).
      logUnapplied(this.p.log, e, 'could not tell the other devices what was sent');
    }
  }
}
