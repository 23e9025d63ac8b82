/**
 * Linking a device (docs/devices.md §6), both sides. The two devices talk
 * over an ordinary agent connection of their own: a link agent on a side
 * database of the profile (same key), so that nothing of the link lands in
 * the replicated profile, and so that every message is delivered exactly
 * once and in order and survives a crash of either side:
 *
 *   existing device E                         new device N
 *   devices.link: device link (invitation)    devices.join: connect with JOIN {name, history}
 *   devices.link.wait: the code               devices.join (returns): the code
 *   (the person compares the codes on both screens; E confirms)
 *   devices.link.confirm: addDevice, then     devices.join.wait: the chunks, then
 *     OFFER and the snapshot's CHUNKs           restore, DONE
 *   (both delete the connection and the side database)
 *
 * A step that is interrupted (Ctrl-C, kill -9) is resumed by running the
 * command again: what was said is in the side database; the agent resends
 * what the other side has not acknowledged.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Agent } from '../agent/agent.js';
import type { AgentHandlers } from '../agent/agent-api.js';
import { withDeadline } from '../agent/deadline.js';
import { decodeAnyLink } from '../agent/links.js';
import { decodeKeys, encodeKeys } from '../agent/devices/operation-args.js';
import {
  decodeLinkMessage,
  deviceLinkOf,
  encodeLinkMessage,
  HISTORY_ALL,
  invitationOfDeviceLink,
  linkVerificationCode,
  LinkProtocolError,
  type LinkMessage,
} from '../agent/devices/link-protocol.js';
import { pruneHistoryBefore } from '../chat/history-prune.js';
import { openSideDatabase, removeSideDatabase, type DB } from '../chat/profile-db.js';
import type { OpContext } from './delivery.js';
import { ApiError } from './errors.js';
import type { Session } from './session.js';
import { SIDE_FILES, type Role } from './link-files.js';

/** A device link works for this long, and once (docs/devices.md §6). */
export const LINK_VALID_MS = 10 * 60_000;
/** How often waiting looks at what the link agent recorded. */
const POLL_MS = 100;
/** How long discarding a link waits for its relays to delete the connection's queues. */
const DISCARD_WAIT_MS = 3000;

const LINK_TABLES = `
CREATE TABLE IF NOT EXISTS link_state (key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS link_chunks (idx INTEGER PRIMARY KEY, bytes BLOB NOT NULL);
`;

type Value = string | number | Buffer | null;

/** What one side of a link has said and heard, in its side database (written in the link agent's transactions). */
class LinkRecord {
  constructor(private readonly db: DB) {
    db.exec(LINK_TABLES);
  }

  private get(key: string): unknown {
    return (this.db.prepare('SELECT value FROM link_state WHERE key = ?').get(key) as { value: unknown } | undefined)?.value;
  }

  text(key: string): string | undefined {
    const v = this.get(key);
    return typeof v === 'string' ? v : undefined;
  }

  num(key: string): number | undefined {
    const v = this.get(key);
    return typeof v === 'number' ? v : undefined;
  }

  bytes(key: string): Uint8Array | undefined {
    const v = this.get(key);
    return Buffer.isBuffer(v) ? new Uint8Array(v) : undefined;
  }

  set(key: string, value: Value): void {
    this.db.prepare('INSERT INTO link_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  raise(key: string, value: number): void {
    if (value > (this.num(key) ?? -Infinity)) this.set(key, value);
  }

  putChunk(index: number, bytes: Uint8Array): void {
    this.db.prepare('INSERT OR IGNORE INTO link_chunks (idx, bytes) VALUES (?, ?)').run(index, Buffer.from(bytes));
  }

  chunk(index: number): Uint8Array | undefined {
    const row = this.db.prepare('SELECT bytes FROM link_chunks WHERE idx = ?').get(index) as { bytes: Buffer } | undefined;
    return row ? new Uint8Array(row.bytes) : undefined;
  }

  chunkCount(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM link_chunks').get() as { n: number }).n;
  }

  chunkBytes(): number {
    return (this.db.prepare('SELECT coalesce(sum(length(bytes)), 0) AS n FROM link_chunks').get() as { n: number }).n;
  }
}

/** What the link agent hears, recorded in the same transaction as its own state. */
function linkHandlers(record: LinkRecord, role: Role): AgentHandlers {
  const fail = (why: string): void => record.set('failed', why);
  const take = (body: Uint8Array): LinkMessage | undefined => {
    try {
      return decodeLinkMessage(body);
    } catch (e) {
      if (!(e instanceof LinkProtocolError)) throw e;
      fail(e.message);
      return undefined;
    }
  };
  const peer = (info: Uint8Array): void => {
    const m = take(info);
    if (role === 'link' && m?.type === 'JOIN') {
      record.set('peer_name', m.name);
      record.set('history_days', m.historyDays);
      if (m.keys) record.set('peer_keys', Buffer.from(encodeKeys(m.keys)));
    } else if (!(role === 'join' && m?.type === 'HELLO')) fail('the other side is not a Nightjar device linking to this profile');
  };
  return {
    onPeerInfo: (_id, info) => peer(info),
    onConnected: (connectionId, info, securityCode) => {
      record.set('connection', connectionId);
      if (securityCode !== undefined) record.set('code', securityCode);
      peer(info);
    },
    onMessage: (_id, message) => {
      const m = take(message.body);
      if (m === undefined) return;
      if (role === 'join' && m.type === 'OFFER') record.set('offer', Buffer.from(message.body));
      else if (role === 'join' && m.type === 'CHUNK') record.putChunk(m.index, m.bytes);
      else if (role === 'link' && m.type === 'DONE') record.set('done', 1);
      else fail(`the other device sent ${m.type}, which it should not`);
    },
    onMessagesLost: () => fail('messages between the two devices were lost on the way'),
    onSent: (_id, seq) => record.raise('sent', seq),
    onDelivered: (_id, seq) => record.raise('delivered', seq),
    onRequest: () => undefined,
    onDeleted: () => record.set('gone', 1),
  };
}

/** One side of a link in progress: its side database and link agent. */
class LinkSide {
  private closed = false;

  private constructor(
    readonly role: Role,
    private readonly db: DB,
    readonly record: LinkRecord,
    readonly agent: Agent,
    private readonly path: string,
  ) {}

  static async open(session: Session, role: Role): Promise<LinkSide> {
    const path = join(session.dir, SIDE_FILES[role]);
    const db = openSideDatabase(path, session.key);
    try {
      const record = new LinkRecord(db);
      const { Agent } = await import('../agent/agent.js');
      const agent = Agent.open(db, linkHandlers(record, role), session.agentOptions);
      return new LinkSide(role, db, record, agent, path);
    } catch (e) {
      db.close();
      throw e;
    }
  }

  get connection(): string {
    const id = this.record.text('connection');
    if (id === undefined) throw new Error('the link has no connection yet');
    return id;
  }

  /** The connection's security code, once its key agreement is done. */
  code(): string | undefined {
    const id = this.record.text('connection');
    return this.record.text('code') ?? (id === undefined ? undefined : this.agent.securityCode(id));
  }

  /** Sends link message `m` in one transaction with `also` (which records that it was sent); returns its seq. */
  send(m: LinkMessage | Uint8Array, also: (seq: number) => void): void {
    const body = m instanceof Uint8Array ? m : encodeLinkMessage(m);
    this.agent.transaction(() => also(this.agent.send(this.connection, body)));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.agent.close();
    } finally {
      this.db.close();
    }
  }

  /** Deletes the connection (best effort: its queues expire on the relays anyway), then the side database. */
  async discard(): Promise<void> {
    const id = this.record.text('connection');
    if (id !== undefined && !this.closed) await withDeadline(this.agent.deleteConnection(id), performance.now() + DISCARD_WAIT_MS, 'deleting the link').catch(() => undefined);
    await this.close();
    removeSideDatabase(this.path);
  }
}

/** The link in progress of each open session (one at a time per profile). */
const sides = new WeakMap<Session, LinkSide>();

/** The session's link in progress, opened from its side database if a command before this one began it. */
async function currentSide(session: Session): Promise<LinkSide | undefined> {
  const open = sides.get(session);
  if (open) return open;
  for (const role of ['link', 'join'] as const) {
    if (existsSync(join(session.dir, SIDE_FILES[role]))) return attach(session, await LinkSide.open(session, role));
  }
  return undefined;
}

function attach(session: Session, side: LinkSide): LinkSide {
  sides.set(session, side);
  session.onClose(() => side.close());
  return side;
}

async function forget(session: Session, side: LinkSide): Promise<void> {
  sides.delete(session);
  await side.discard();
}

function sideOf(session: Session, side: LinkSide | undefined, role: Role): LinkSide {
  if (side?.role === role) return side;
  if (side) throw wrongRole(side.role);
  throw new ApiError('DEVICE_LINK', role === 'link' ? 'no device link in progress (make one with: nightjar devices link)' : 'this profile is not joining anything (run: nightjar devices join <link>)');
}

function wrongRole(role: Role): ApiError {
  return role === 'join'
    ? new ApiError('LINKING', 'this profile is a new device still receiving its profile; finish with: nightjar devices join')
    : new ApiError('DEVICE_LINK', 'this profile is linking another device; finish that first (nightjar devices link), or cancel it (nightjar devices link --cancel)');
}

/** The profile's agent and the link in progress of `role`, its link agent running. */
async function running(ctx: OpContext, role: Role): Promise<{ agent: Agent; side: LinkSide; record: LinkRecord }> {
  const agent = await ctx.session.loadAgent();
  const side = sideOf(ctx.session, await currentSide(ctx.session), role);
  await side.agent.start();
  return { agent, side, record: side.record };
}

/** Waits, looking every POLL_MS, until `check` returns a value; stops with INTERRUPTED when the caller goes away. */
async function waitFor<T>(ctx: OpContext, check: () => T | undefined): Promise<T> {
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (ctx.signal.aborted) throw new ApiError('INTERRUPTED', 'stopped waiting; run the same command again to go on');
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** waitFor, but a failure `check` returns gives the link up (its connection and side database go) and is thrown. */
async function waitOrGiveUp<T>(ctx: OpContext, side: LinkSide, check: () => T | ApiError | undefined): Promise<T> {
  const v = await waitFor(ctx, check);
  if (v instanceof ApiError) {
    await forget(ctx.session, side);
    throw v;
  }
  return v;
}

/** A failure the other side caused or the link suffered, if any. */
function trouble(side: LinkSide): ApiError | undefined {
  const failed = side.record.text('failed');
  if (failed !== undefined) return new ApiError('DEVICE_LINK', `linking failed: ${failed}`);
  return undefined;
}

// ---- the existing device --------------------------------------------------------------------

export type LinkStarted = {
  readonly type: 'deviceLink';
  readonly link: string;
  readonly expiresAt: string;
  /** The link was confirmed before: confirming again sends what is left. */
  readonly confirmed: boolean;
};

/** Makes a device link (or returns the one still waiting); `thisName` names this device if the profile is on one device so far. */
export async function beginLink(ctx: OpContext, thisName: string): Promise<LinkStarted> {
  const { session } = ctx;
  const agent = await session.loadAgent();
  let side = await currentSide(session);
  if (side?.role === 'join') throw wrongRole('join');
  if (side) {
    const createdAt = side.record.num('created_at') ?? 0;
    const confirmed = side.record.bytes('offer') !== undefined;
    if (confirmed || (side.record.text('connection') !== undefined && side.code() !== undefined) || createdAt + LINK_VALID_MS > Date.now()) {
      return { type: 'deviceLink', link: side.record.text('link')!, expiresAt: new Date(createdAt + LINK_VALID_MS).toISOString(), confirmed };
    }
    await forget(session, side); // expired unused: its queue goes with it
  }
  side = attach(session, await LinkSide.open(session, 'link'));
  try {
    for (const r of agent.listRelays()) side.agent.addRelay(r.address, r.operator, agent.relayPassword(r.address) ?? null);
    const routing = agent.routing();
    side.agent.setRouting(routing.mode, routing.allowDirectFallback);
    const createdAt = Date.now();
    const { connectionId, link } = await side.agent.createInvitation(encodeLinkMessage({ type: 'HELLO' }));
    const deviceLink = deviceLinkOf(link);
    side.agent.transaction(() => {
      side!.record.set('created_at', createdAt);
      side!.record.set('link', deviceLink);
      side!.record.set('this_name', thisName);
      side!.record.set('connection', connectionId);
    });
    await side.agent.start();
    return { type: 'deviceLink', link: deviceLink, expiresAt: new Date(createdAt + LINK_VALID_MS).toISOString(), confirmed: false };
  } catch (e) {
    await forget(session, side);
    throw e;
  }
}

export type LinkAnswered = {
  readonly type: 'deviceLinkCode';
  /** The first two groups of the connection's security code: the new device shows the same. */
  readonly code: string;
  /** The name the new device asked for. */
  readonly name: string;
};

/** Waits until the new device has used the link; LINK_VALID_MS after the link was made, it is withdrawn. */
export async function waitLinkAnswer(ctx: OpContext): Promise<LinkAnswered> {
  const { side } = await running(ctx, 'link');
  const expiresAt = (side.record.num('created_at') ?? 0) + LINK_VALID_MS;
  ctx.progress('waiting for the new device to use the link');
  const code = await waitOrGiveUp(ctx, side, () => {
    const problem = trouble(side);
    if (problem) return problem;
    const code = side.code();
    if (code !== undefined && side.record.text('peer_name') !== undefined) return code;
    if (Date.now() > expiresAt) return new ApiError('DEVICE_LINK', 'nobody used the device link within 10 minutes; it no longer works (make a new one with: nightjar devices link)');
    return undefined;
  });
  return { type: 'deviceLinkCode', code: linkVerificationCode(code), name: side.record.text('peer_name')! };
}

export type DeviceLinked = {
  readonly type: 'deviceLinked';
  readonly device: number;
  readonly name: string;
};

/**
 * The person saw the same code on both devices: the new device joins the
 * group (devices.add), and gets the snapshot taken right after, in chunks;
 * resolves once it says it has everything (DONE).
 */
export async function confirmLink(ctx: OpContext): Promise<DeviceLinked> {
  const { session } = ctx;
  const { agent, side, record } = await running(ctx, 'link');
  const name = record.text('peer_name');
  if (name === undefined || side.code() === undefined) throw new ApiError('DEVICE_LINK', 'the new device has not used the link yet (nightjar devices link waits for it)');
  if (record.bytes('offer') === undefined) {
    ctx.progress('adding the device and taking a copy of the profile');
    const days = record.num('history_days') ?? HISTORY_ALL;
    const rewrite = days === HISTORY_ALL ? undefined : pruneHistoryBefore(Math.floor(Date.now() / 1000) - days * 86_400);
    const keys = record.bytes('peer_keys');
    const invite = await agent.addDevice(name, { thisDevice: record.text('this_name') ?? 'first device', ...(rewrite ? { rewrite } : {}), ...(keys ? { keys: decodeKeys(keys) } : {}) });
    const offer = encodeLinkMessage({
      type: 'OFFER',
      group: invite.group,
      resumeFrom: invite.resumeFrom,
      chunkCount: invite.snapshot.length,
      totalLength: invite.snapshot.reduce((n, c) => n + c.length, 0),
    });
    side.agent.transaction(() => {
      invite.snapshot.forEach((c, i) => record.putChunk(i, c));
      record.set('device', invite.group.device);
      record.set('offer', Buffer.from(offer));
    });
  }
  const offer = decodeLinkMessage(record.bytes('offer')!) as Extract<LinkMessage, { type: 'OFFER' }>;
  // Message k is the offer (k = 0) or chunk k - 1; `queued` counts what is in the link agent's outbox.
  const total = offer.chunkCount + 1;
  for (let k = record.num('queued') ?? 0; k < total; k++) {
    const m: LinkMessage | Uint8Array = k === 0 ? record.bytes('offer')! : { type: 'CHUNK', index: k - 1, bytes: record.chunk(k - 1)! };
    side.send(m, (seq) => {
      if (k === 0) record.set('first_seq', seq);
      record.set('queued', k + 1);
    });
  }
  side.agent.kick();
  const firstSeq = record.num('first_seq')!;
  await waitOrGiveUp(ctx, side, () => {
    const problem = trouble(side);
    if (problem) return problem;
    const delivered = Math.max(0, (record.num('delivered') ?? 0) - firstSeq + 1);
    if (record.num('done') === 1 || (record.num('gone') === 1 && delivered >= total)) return 'done';
    if (record.num('gone') === 1) return new ApiError('DEVICE_LINK', 'the new device gave up before it had the profile');
    ctx.progress(`the new device has ${delivered} of ${total} parts of the profile (${mb(offer.totalLength)})`);
    return undefined;
  });
  await forget(session, side);
  return { type: 'deviceLinked', device: offer.group.device, name };
}

/** Withdraws the link in progress (the new device is told, if it joined). */
export async function cancelLink(ctx: OpContext): Promise<{ type: 'deviceLinkCancelled'; cancelled: boolean }> {
  const side = await currentSide(ctx.session);
  if (side?.role === 'join') throw wrongRole('join');
  if (side) await forget(ctx.session, side);
  return { type: 'deviceLinkCancelled', cancelled: side !== undefined };
}

// ---- the new device ------------------------------------------------------------------------

export type JoinAnswered = {
  readonly type: 'deviceJoinCode';
  readonly code: string;
};

/**
 * Uses a device link (or goes on with the join in progress, `deviceLink`
 * then unused) and waits for the key agreement: returns the code the
 * person compares with the other device's.
 */
export async function beginJoin(ctx: OpContext, deviceLink: string | undefined, name: string, historyDays: number): Promise<JoinAnswered> {
  const { session } = ctx;
  const agent = await session.loadAgent();
  let side = await currentSide(session);
  if (side?.role === 'link') throw wrongRole('link');
  if (!side) {
    // A device removed, or away longer than its log is kept, is linked again over its old copy (docs/devices.md §8).
    if (!agent.needsRelink && (agent.multiDevice || agent.connections().length > 0 || session.chat.contacts().length > 0)) {
      throw new ApiError('BAD_REQUEST', 'devices join needs a new profile: this one has contacts or devices already (use --profile DIR for a new one)');
    }
    if (deviceLink === undefined) throw new ApiError('BAD_REQUEST', 'give the device link (from nightjar devices link on your other device)');
    const invitation = invitationOfDeviceLink(deviceLink);
    const { relay } = decodeAnyLink(invitation);
    side = attach(session, await LinkSide.open(session, 'join'));
    try {
      side.agent.addRelay(relay);
      // The new device knows this one relay only; the link's relay sees both devices, as when one gives a contact an invitation.
      side.agent.setRouting('direct');
      side.record.set('created_at', Date.now());
      ctx.progress('joining through the device link');
      const { connectionId } = await side.agent.connect(invitation, encodeLinkMessage({ type: 'JOIN', name, historyDays, keys: agent.deviceKeys() }));
      side.record.set('connection', connectionId);
      await side.agent.start();
    } catch (e) {
      await forget(session, side);
      throw e;
    }
  } else await side.agent.start();
  const joined = side;
  ctx.progress('waiting for the other device to answer');
  const code = await waitOrGiveUp(ctx, joined, () => trouble(joined) ?? (joined.record.num('gone') === 1 ? gone() : joined.code()));
  return { type: 'deviceJoinCode', code: linkVerificationCode(code) };
}

const gone = (): ApiError => new ApiError('DEVICE_LINK', 'the other device cancelled the link (did the codes differ?); nothing was kept here');

export type DeviceJoined = {
  readonly type: 'deviceJoined';
  readonly device: number;
  /** The profile's display name. */
  readonly profile: string;
};

/** Waits for the profile (after the other device confirmed the code), restores it, and says so. */
export async function finishJoin(ctx: OpContext): Promise<DeviceJoined> {
  const { session } = ctx;
  const { agent, side, record } = await running(ctx, 'join');
  ctx.progress('waiting for the other device to confirm the code');
  const offer = await waitOrGiveUp(ctx, side, () => {
    const problem = trouble(side) ?? (record.num('gone') === 1 ? gone() : undefined);
    if (problem) return problem;
    const bytes = record.bytes('offer');
    if (bytes === undefined) return undefined;
    const m = decodeLinkMessage(bytes) as Extract<LinkMessage, { type: 'OFFER' }>;
    const have = record.chunkCount();
    if (have >= m.chunkCount) return m;
    ctx.progress(`receiving the profile: ${have} of ${m.chunkCount} parts (${mb(record.chunkBytes())} of ${mb(m.totalLength)})`);
    return undefined;
  });
  if (!agent.multiDevice || agent.needsRelink) {
    ctx.progress('restoring the profile');
    const snapshot = Array.from({ length: offer.chunkCount }, (_, i) => record.chunk(i)!);
    agent.joinDeviceGroup({ group: offer.group, resumeFrom: offer.resumeFrom, snapshot });
    session.chat.refreshSecurityCodes();
  }
  if (record.num('done_seq') === undefined) side.send({ type: 'DONE' }, (seq) => record.set('done_seq', seq));
  side.agent.kick();
  ctx.progress('telling the other device');
  const doneSeq = record.num('done_seq')!;
  // The other device learns it either way: from DONE or, if that is slow, from the connection's deletion.
  const until = Date.now() + DISCARD_WAIT_MS;
  await waitFor(ctx, () => ((record.num('sent') ?? 0) >= doneSeq || Date.now() > until ? true : undefined)).catch(() => undefined);
  await forget(session, side);
  return { type: 'deviceJoined', device: offer.group.device, profile: session.chat.displayName() };
}

function mb(bytes: number): string {
  return bytes < 100_000 ? `${Math.max(1, Math.round(bytes / 1000))} kB` : `${(bytes / 1e6).toFixed(1)} MB`;
}
