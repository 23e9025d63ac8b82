/**
 * Everything a front end can ask of a profile's node, by name: the CLI's
 * commands, the web app and bots all run these (docs/api.md). Each takes
 * JSON parameters, checks them, and returns a JSON result built from the
 * views in views.ts; errors a user can cause are ApiError.
 */
import { isAbsolute } from 'node:path';
import type { TransportIsolation } from '../agent/agent-api.js';
import { RELAYS_NEEDED, routeStrength, type RouteStrength, type RoutingMode } from '../agent/relays.js';
import { normalizeSecurityCode } from '../agent/security-code.js';
import { contactLabel } from '../chat/contacts.js';
import type { Contact } from '../chat/store.js';
import { parseAddress } from '../protocol/address.js';
import { awaitConnections, deliver, deliverReporting, handshakeWaitMs, type OpContext } from './delivery.js';
import { ApiError } from './errors.js';
import { validName } from '../chat/body.js';
import { parseHistory } from '../agent/devices/link-protocol.js';
import { joinUnfinished } from './link-files.js';
import { hasDeviceGroup } from '../agent/devices/device-group-check.js';
import { contactView, isoTime, messageView, requestView, type ContactView, type MessageView, type RequestView } from './views.js';

export type { OpContext };

// ---- parameters -------------------------------------------------------------

type Params = Record<string, unknown>;

function bad(message: string): ApiError {
  return new ApiError('BAD_REQUEST', message);
}

function str(p: Params, key: string): string {
  const v = p[key];
  if (typeof v !== 'string') throw bad(`${key} must be a string`);
  return v;
}

function optStr(p: Params, key: string): string | undefined {
  return p[key] === undefined || p[key] === null ? undefined : str(p, key);
}

function optBool(p: Params, key: string): boolean | undefined {
  const v = p[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw bad(`${key} must be true or false`);
  return v;
}

function optInt(p: Params, key: string, min = 0): number | undefined {
  const v = p[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw bad(`${key} must be a whole number, at least ${min}`);
  return v;
}

function int(p: Params, key: string, min = 0): number {
  const v = optInt(p, key, min);
  if (v === undefined) throw bad(`${key} is required`);
  return v;
}

function asParams(raw: unknown): Params {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw bad('params must be an object');
  return raw as Params;
}

// ---- shared pieces -----------------------------------------------------------

function contactOf(ctx: OpContext, p: Params): Contact {
  return ctx.session.chat.find(str(p, 'contact'));
}

function fresh(ctx: OpContext, c: Contact): Contact {
  return ctx.session.chat.store.contact(c.id) ?? c;
}

function unreadCounts(ctx: OpContext): Map<number, number> {
  const unread = new Map<number, number>();
  for (const m of ctx.session.chat.unread()) unread.set(m.contactId, (unread.get(m.contactId) ?? 0) + 1);
  return unread;
}

export interface RelayView {
  readonly type: 'relay';
  readonly address: string;
  readonly operator: string;
  readonly password: boolean;
  readonly reachable: boolean | null;
  readonly latencyMs: number | null;
  readonly lastError: string | null;
  readonly queues: number;
  readonly [key: string]: unknown;
}

export interface RoutingView {
  readonly type: 'routing';
  readonly mode: RoutingMode;
  readonly directFallback: boolean;
  /** Transport isolation: 'relay' (one session per relay) or 'connection' (sessions per connection). */
  readonly isolation: TransportIsolation;
  readonly relays: number;
  readonly operators: number;
  /** What the relay list allows for the mode (agent/relays.ts). */
  readonly strength: RouteStrength;
  /** One line on what that means, or null when all is well. */
  readonly note: string | null;
  readonly [key: string]: unknown;
}

function routingView(ctx: OpContext): RoutingView {
  const { agent } = ctx.session;
  const { mode, allowDirectFallback } = agent.routing();
  const relays = agent.listRelays().length;
  const operators = agent.operatorCount();
  const strength = routeStrength(mode, relays);
  const need = RELAYS_NEEDED[mode];
  let note: string | null = null;
  if (strength === 'impossible') {
    note = `${mode} routing needs at least ${need.works} relays in your list (you have ${relays}): messages ${allowDirectFallback ? 'go directly, showing your IP address to your contacts’ relays' : 'wait'} until you add ${need.works - relays} more (nightjar relays add …)`;
  } else if (strength === 'fragile') {
    note = `${mode} routing works with ${relays} relays, but one of them going down stops messages to the others; ${need.robust} relays survive that (add ${need.robust - relays} more)`;
  } else if (mode !== 'direct' && operators < 2) {
    note = `all your relays are run by one operator, who could then see both ends of a route; add a relay of another operator (relays add … --operator NAME)`;
  }
  return { type: 'routing', mode, directFallback: allowDirectFallback, isolation: agent.transportIsolation(), relays, operators, strength, note };
}

function relayViews(ctx: OpContext, health = ctx.session.agent.relayHealth()): RelayView[] {
  return health.map((r) => ({
    type: 'relay',
    address: r.address,
    operator: r.operator,
    password: r.hasPassword,
    reachable: r.reachable ?? null,
    latencyMs: r.latencyMs ?? null,
    lastError: r.lastError ?? null,
    queues: r.queues,
  }));
}

/** Waits for a connection's handshake, says what happens next if it did not finish. */
async function settleConnection(ctx: OpContext, contact: Contact, waitMs: number): Promise<{ contact: ContactView; connected: boolean }> {
  const waiting = await awaitConnections(ctx, [contact.connectionId], waitMs);
  const now = fresh(ctx, contact);
  return { contact: contactView(now), connected: waiting.length === 0 && ctx.session.chat.isConnected(now) };
}

/** After a sync: wait briefly for the handshakes that sync moved forward, so the contact is connected when the command returns. */
async function finishHandshakes(ctx: OpContext): Promise<void> {
  const ids = ctx.session.agent.handshakesInProgress();
  if (ids.length > 0) await awaitConnections(ctx, ids, handshakeWaitMs());
}

// ---- the operations ------------------------------------------------------------

async function contacts(ctx: OpContext, p: Params): Promise<{ contacts: ContactView[] }> {
  const unread = unreadCounts(ctx);
  return { contacts: ctx.session.chat.contacts({ all: optBool(p, 'all') === true }).map((c) => contactView(c, unread.get(c.id) ?? 0)) };
}

async function alias(ctx: OpContext, p: Params): Promise<ContactView> {
  const value = p['alias'] === null ? null : str(p, 'alias');
  return contactView(await ctx.session.chat.setAlias(contactOf(ctx, p), value));
}

async function verify(ctx: OpContext, p: Params): Promise<{ contact: ContactView; code: string | null }> {
  const { chat } = ctx.session;
  let contact = chat.refreshSecurityCode(contactOf(ctx, p));
  const typed = optStr(p, 'code');
  if (optBool(p, 'clear') === true) contact = await chat.setVerified(contact, false);
  else if (typed !== undefined) {
    const code = normalizeSecurityCode(typed);
    if (code === undefined) throw new ApiError('BAD_INPUT', 'a security code is 60 digits (12 groups of 5)');
    if (contact.securityCode === null) throw new ApiError('CONTACT_NOT_READY', `${contactLabel(contact)} is not connected yet: there is no security code to compare`);
    if (code !== contact.securityCode) {
      throw new ApiError(
        'CODE_MISMATCH',
        `that is not the security code of your connection with ${contactLabel(contact)}: if you typed it right, someone may be in the middle; nothing was marked (get a new invitation to ${contactLabel(contact)} in person)`,
      );
    }
    contact = await chat.setVerified(contact, true);
  } else if (optBool(p, 'confirm') === true) contact = await chat.setVerified(contact, true);
  return { contact: contactView(contact), code: contact.securityCode };
}

async function send(ctx: OpContext, p: Params): Promise<{ message: MessageView; note: string | null }> {
  const { chat, agent } = ctx.session;
  const contact = contactOf(ctx, p);
  const queued = await chat.send(contact, str(p, 'text'));
  const label = contactLabel(contact);
  if (!chat.isConnected(contact)) {
    const unreachable = await deliverReporting(ctx);
    await finishHandshakes(ctx);
    const m = chat.message(queued.id) ?? queued;
    const note = m.status === 'queued' ? `${label} has not finished connecting; the message is saved and leaves as soon as they have${unreachable ? ` (${unreachable})` : ''}` : null;
    return { message: messageView(m, label), note };
  }
  // Only sends: receiving is `read`'s job, and would make a send cost more with every contact.
  await deliver(ctx, 'the message is saved and will be sent by the next command', { receive: false });
  const m = chat.message(queued.id) ?? queued;
  if (m.status === 'queued' && agent.awaitingRekey(contact.connectionId)) {
    // Held after a device removal until the contact's answer gives the conversation new keys (docs/devices.md §7).
    return { message: messageView(m, label), note: `after a device removal the conversation is moving to new keys: the message is saved and leaves once ${label} has answered (with a later command)` };
  }
  if (m.status === 'queued') {
    const problem = agent.connection(contact.connectionId)?.deliveryProblem;
    throw new ApiError('RELAY_UNREACHABLE', `the relay has not confirmed the message yet${problem ? ` (${problem})` : ''}; it is saved and will be sent by the next command`);
  }
  return { message: messageView(m, label), note: null };
}

async function read(ctx: OpContext, p: Params): Promise<{ messages: MessageView[]; requests: RequestView[]; waiting: ContactView[]; unreachable: string | null }> {
  const { chat } = ctx.session;
  const ref = optStr(p, 'contact');
  const only = ref === undefined ? undefined : chat.find(ref);
  // An unreachable relay does not hide what the others delivered: it is reported beside it.
  const unreachable = await deliverReporting(ctx);
  await finishHandshakes(ctx);
  const labels = new Map<number, string>(chat.contacts({ all: true }).map((c) => [c.id, contactLabel(c)]));
  const messages = chat.unread(only === undefined ? undefined : fresh(ctx, only));
  const requests = chat.requests().filter((r) => !r.shown);
  chat.store.markRequestsShown(requests.map((r) => r.n));
  await chat.markRead(messages);
  if (messages.length > 0 && unreachable === undefined) await deliverReporting(ctx); // read receipts; a failure leaves them for next time
  const waiting = chat.contacts().filter((c) => c.status === 'pending' && c.displayName !== null);
  return {
    messages: messages.map((m) => messageView(m, labels.get(m.contactId) ?? `#${m.contactId}`)),
    requests: requests.map(requestView),
    waiting: waiting.map((c) => contactView(c)),
    unreachable: unreachable ?? null,
  };
}

async function history(ctx: OpContext, p: Params): Promise<{ contact: ContactView; messages: MessageView[] }> {
  const contact = contactOf(ctx, p);
  const label = contactLabel(contact);
  return { contact: contactView(contact), messages: ctx.session.chat.history(contact, optInt(p, 'limit', 1)).map((m) => messageView(m, label)) };
}

async function disappear(ctx: OpContext, p: Params): Promise<ContactView> {
  const seconds = p['seconds'] === null ? null : int(p, 'seconds', 1);
  const contact = await ctx.session.chat.setTimer(contactOf(ctx, p), seconds);
  await deliver(ctx, 'the change is saved and will be sent by the next command');
  return contactView(contact);
}

async function deleteContact(ctx: OpContext, p: Params): Promise<ContactView> {
  const contact = contactOf(ctx, p);
  await ctx.session.chat.deleteContact(contact);
  return { ...contactView(contact), deleted: true };
}

async function rotate(ctx: OpContext, p: Params): Promise<{ contact: ContactView; receiveRelays: readonly string[] }> {
  const contact = contactOf(ctx, p);
  await ctx.session.chat.rotate(contact, optStr(p, 'relay'));
  await deliver(ctx, 'the rotation is saved and will continue with the next command');
  return { contact: contactView(contact), receiveRelays: ctx.session.agent.connection(contact.connectionId)?.receiveRelays ?? [] };
}

async function redundant(ctx: OpContext, p: Params): Promise<{ contact: ContactView; receiveRelays: readonly string[] }> {
  const contact = contactOf(ctx, p);
  await ctx.session.agent.addRedundantQueue(contact.connectionId, optStr(p, 'relay'));
  await deliver(ctx, 'the new queue is saved and will be announced with the next command');
  return { contact: contactView(contact), receiveRelays: ctx.session.agent.connection(contact.connectionId)?.receiveRelays ?? [] };
}

async function invite(ctx: OpContext, p: Params): Promise<{ type: 'invitation'; contactId: number; link: string; expiresAt: string | null; relay: string }> {
  const { chat, agent } = ctx.session;
  await chat.expireInvitations().catch(() => undefined);
  const validSeconds = optInt(p, 'validSeconds', 60);
  const { contact, link } = await chat.invite(validSeconds);
  return { type: 'invitation', contactId: contact.id, link, expiresAt: contact.expiresAt === null ? null : isoTime(contact.expiresAt), relay: agent.connection(contact.connectionId)?.receiveRelays[0] ?? '' };
}

async function connect(ctx: OpContext, p: Params): Promise<{ contact: ContactView; connected: boolean; viaAddress: boolean }> {
  const { chat } = ctx.session;
  const contact = await chat.connect(str(p, 'link'));
  await deliver(ctx, 'the connection request is saved and will be sent by the next command');
  const viaAddress = contact.origin === 'address';
  // A contact address's owner decides when to accept: nothing to wait for.
  const waitMs = viaAddress ? 0 : (optInt(p, 'waitMs') ?? 0);
  return { ...(await settleConnection(ctx, contact, waitMs)), viaAddress };
}

async function accept(ctx: OpContext, p: Params): Promise<{ contact: ContactView; request: number; connected: boolean }> {
  const n = int(p, 'n', 1);
  const contact = await ctx.session.chat.accept(n);
  await deliver(ctx, 'the acceptance is saved and will be sent by the next command');
  return { ...(await settleConnection(ctx, contact, optInt(p, 'waitMs') ?? 0)), request: n };
}

async function reject(ctx: OpContext, p: Params): Promise<RequestView> {
  return { ...requestView(await ctx.session.chat.reject(int(p, 'n', 1))), rejected: true };
}

async function requests(ctx: OpContext): Promise<{ requests: RequestView[]; unreachable: string | null }> {
  const { chat } = ctx.session;
  const unreachable = await deliverReporting(ctx);
  const list = chat.requests();
  chat.store.markRequestsShown(list.map((r) => r.n));
  return { requests: list.map(requestView), unreachable: unreachable ?? null };
}

async function addressCreate(ctx: OpContext): Promise<{ type: 'address'; addressId: string; link: string }> {
  const { chat } = ctx.session;
  if (chat.addresses().length > 0) throw new ApiError('BAD_REQUEST', 'you already have a contact address (see: nightjar address show)');
  return { type: 'address', ...(await chat.createAddress()) };
}

async function addressShow(ctx: OpContext): Promise<{ addresses: { type: 'address'; addressId: string; link: string }[] }> {
  return { addresses: ctx.session.chat.addresses().map((a) => ({ type: 'address', addressId: a.addressId, link: a.link })) };
}

function needAddresses(ctx: OpContext): { addressId: string }[] {
  const list = ctx.session.chat.addresses();
  if (list.length === 0) throw new ApiError('BAD_REQUEST', 'you have no contact address (create one with: nightjar address create)');
  return list;
}

async function addressDelete(ctx: OpContext): Promise<{ deleted: string[] }> {
  const deleted: string[] = [];
  for (const a of needAddresses(ctx)) {
    await ctx.session.chat.deleteAddress(a.addressId);
    deleted.push(a.addressId);
  }
  return { deleted };
}

async function addressSet(ctx: OpContext, p: Params): Promise<{ addresses: { type: 'address'; addressId: string; paused: boolean; maxPerHour: number; stampBits: number }[] }> {
  const { agent } = ctx.session;
  const paused = optBool(p, 'paused');
  const maxPerHour = optInt(p, 'maxPerHour');
  for (const a of needAddresses(ctx)) {
    if (paused !== undefined) await agent.setAddressPaused(a.addressId, paused);
    if (maxPerHour !== undefined) await agent.setAddressLimit(a.addressId, maxPerHour);
  }
  return { addresses: agent.listAddresses().map((a) => ({ type: 'address', addressId: a.addressId, paused: a.paused, maxPerHour: a.maxPerHour, stampBits: a.stampBits })) };
}

/** Seconds `relays add` gives a relay to answer the check. */
const RELAY_CHECK_MS = 5000;

async function relaysAdd(ctx: OpContext, p: Params): Promise<{ relay: RelayView; checked: boolean; fallbackOff: boolean; routing: RoutingView }> {
  const { agent } = ctx.session;
  const address = str(p, 'address').trim();
  parseAddress(address);
  const operator = optStr(p, 'operator');
  // A string sets the password, null forgets it, none keeps the one on record.
  const password = p['password'] === undefined ? undefined : p['password'] === null ? null : str(p, 'password');
  const offline = optBool(p, 'offline') === true;
  const listed = agent.listRelays().find((r) => r.address === address);
  if (!offline) {
    ctx.progress(`checking ${address}`);
    try {
      // The password to check: the one given, else the one on record.
      const { checkRelay } = await import('../agent/relay-check.js');
      const check = await checkRelay(address, password === undefined ? agent.relayPassword(address) : (password ?? undefined), RELAY_CHECK_MS);
      agent.addRelay(address, operator, password);
      agent.recordRelayHealth(address, null, check.latencyMs);
    } finally {
      ctx.progress(null);
    }
  } else {
    agent.addRelay(address, operator, password);
  }
  const relay = relayViews(ctx).find((r) => r.address === address)!;
  // Direct fallback was for a list with nothing to forward through; once it has, it goes.
  const { mode, allowDirectFallback } = agent.routing();
  const fallbackOff = allowDirectFallback && mode !== 'direct' && routeStrength(mode, agent.listRelays().length) !== 'impossible';
  if (fallbackOff) agent.setRouting(mode, false);
  return { relay: { ...relay, added: listed === undefined }, checked: !offline, fallbackOff, routing: routingView(ctx) };
}

async function relaysRemove(ctx: OpContext, p: Params): Promise<{ address: string; removed: true; routing: RoutingView }> {
  const address = str(p, 'address').trim();
  if (!ctx.session.agent.removeRelay(address)) throw new ApiError('BAD_REQUEST', `relay ${address} is not in the list (see: nightjar relays list)`);
  return { address, removed: true, routing: routingView(ctx) };
}

async function relaysList(ctx: OpContext, p: Params): Promise<{ relays: RelayView[]; routing: RoutingView }> {
  const { agent } = ctx.session;
  if (optBool(p, 'check') !== false) {
    ctx.progress('checking your relays');
    try {
      await agent.checkRelays(RELAY_CHECK_MS);
    } finally {
      ctx.progress(null);
    }
  }
  return { relays: relayViews(ctx), routing: routingView(ctx) };
}

const ROUTING_MODES: readonly RoutingMode[] = ['direct', 'private', 'onion'];

async function routing(ctx: OpContext, p: Params): Promise<RoutingView> {
  const { agent } = ctx.session;
  const mode = optStr(p, 'mode');
  const directFallback = optBool(p, 'directFallback');
  const isolation = optStr(p, 'isolation');
  if (isolation !== undefined) {
    if (isolation !== 'relay' && isolation !== 'connection') throw new ApiError('BAD_INPUT', 'isolation must be relay or connection');
    agent.setTransportIsolation(isolation);
  }
  if (mode !== undefined && !(ROUTING_MODES as readonly string[]).includes(mode)) throw new ApiError('BAD_INPUT', `routing must be one of ${ROUTING_MODES.join(', ')}`);
  if (mode !== undefined || directFallback !== undefined) {
    const current = agent.routing();
    const next = (mode as RoutingMode | undefined) ?? current.mode;
    const fallback = directFallback ?? current.allowDirectFallback;
    const relays = agent.listRelays().length;
    // A mode that cannot carry a single message is refused, not accepted to fail every send.
    if (next === 'onion' && routeStrength(next, relays) === 'impossible') {
      throw new ApiError(
        'NOT_ENOUGH_RELAYS',
        `onion routing needs at least ${RELAYS_NEEDED.onion.works} relays in your list (two to forward through besides the contact's), you have ${relays}; add relays first (nightjar relays add …)`,
      );
    }
    agent.setRouting(next, fallback);
  }
  return routingView(ctx);
}

// ---- devices (docs/devices.md) --------------------------------------------------

export type DeviceView = {
  readonly type: 'device';
  readonly device: number;
  readonly name: string;
  readonly thisDevice: boolean;
  readonly addedAt: string;
  readonly lastSeenAt: string | null;
  readonly removedAt: string | null;
};

const msTime = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

async function devices(ctx: OpContext): Promise<{ devices: DeviceView[] }> {
  return {
    devices: ctx.session.agent.devices().map((d) => ({
      type: 'device',
      device: d.device,
      name: d.name,
      thisDevice: d.thisDevice,
      addedAt: msTime(d.addedAt)!,
      lastSeenAt: msTime(d.lastHeardAt),
      removedAt: msTime(d.removedAt),
    })),
  };
}

function deviceName(p: Params, key: string): string {
  const name = validName(str(p, key));
  if (name === undefined) throw new ApiError('BAD_INPUT', 'a device name is 1 to 64 printable characters');
  return name;
}

async function devicesRename(ctx: OpContext, p: Params): Promise<{ devices: DeviceView[] }> {
  const device = int(p, 'device', 1);
  if (!(await ctx.session.agent.renameDevice(device, deviceName(p, 'name')))) throw new ApiError('BAD_INPUT', `there is no device ${device} (see: nightjar devices)`);
  return devices(ctx);
}

async function devicesRemove(ctx: OpContext, p: Params): Promise<{ type: 'deviceRemoved'; device: number; removed: boolean; notMoved: number; devices: DeviceView[] }> {
  const device = int(p, 'device', 1);
  const { removed, notMoved } = await ctx.session.agent.removeDevice(device);
  return { type: 'deviceRemoved', device, removed, notMoved, ...(await devices(ctx)) };
}

/** The linking code, loaded when a device is linked. */
const linking = (): Promise<typeof import('./device-link.js')> => import('./device-link.js');

async function devicesJoin(ctx: OpContext, p: Params) {
  const history = parseHistory(optStr(p, 'history') ?? 'all');
  if (history === undefined) throw new ApiError('BAD_INPUT', 'history is all, none, or a number of days such as 30d');
  return (await linking()).beginJoin(ctx, optStr(p, 'link'), deviceName(p, 'name'), history);
}

// ---- export (docs/devices.md §10) ----------------------------------------------------

async function exportArchive(ctx: OpContext, p: Params) {
  const path = str(p, 'path');
  if (!isAbsolute(path)) throw bad('path must be absolute (the node may run in another directory)');
  const passphrase = str(p, 'passphrase');
  if (passphrase === '') throw new ApiError('BAD_INPUT', 'the archive’s passphrase must not be empty');
  const { exportProfile } = await import('./profile-export.js');
  return exportProfile(ctx, path, passphrase, optBool(p, 'replace') === true);
}

// ---- the table ---------------------------------------------------------------

type Operation = (ctx: OpContext, params: Params) => Promise<unknown>;

const OPERATIONS = {
  contacts,
  alias,
  verify,
  send,
  read,
  history,
  disappear,
  delete: deleteContact,
  rotate,
  redundant,
  invite,
  connect,
  accept,
  reject,
  requests,
  'address.create': addressCreate,
  'address.show': addressShow,
  'address.delete': addressDelete,
  'address.set': addressSet,
  'relays.add': relaysAdd,
  'relays.remove': relaysRemove,
  'relays.list': relaysList,
  routing,
  devices,
  'devices.rename': devicesRename,
  'devices.remove': devicesRemove,
  'devices.link': async (ctx: OpContext, p: Params) => (await linking()).beginLink(ctx, deviceName(p, 'name')),
  'devices.link.wait': async (ctx: OpContext) => (await linking()).waitLinkAnswer(ctx),
  'devices.link.confirm': async (ctx: OpContext) => (await linking()).confirmLink(ctx),
  'devices.link.cancel': async (ctx: OpContext) => (await linking()).cancelLink(ctx),
  'devices.join': devicesJoin,
  'devices.join.wait': async (ctx: OpContext) => (await linking()).finishJoin(ctx),
  export: exportArchive,
} satisfies Record<string, Operation>;

export type OpName = keyof typeof OPERATIONS;
export type OpResult<N extends OpName> = Awaited<ReturnType<(typeof OPERATIONS)[N]>>;

export function isOpName(name: string): name is OpName {
  return Object.hasOwn(OPERATIONS, name);
}

/** How long an operation waits for the device log before it goes on with what this device has (its relay may be down). */
const CATCH_UP_MS = 5000;

/** Operations that need no agent (they read tables only): on a profile with one device they run without loading it. */
const WITHOUT_AGENT: ReadonlySet<OpName> = new Set(['contacts', 'history', 'export']);

/** Runs operation `name`; throws ApiError BAD_REQUEST for an unknown one or bad parameters. */
export async function runOperation(ctx: OpContext, name: string, params: unknown): Promise<unknown> {
  if (!isOpName(name)) throw bad(`unknown operation ${JSON.stringify(name)}`);
  const checked = asParams(params);
  // A new device holds an empty profile until it has received the real one: nothing else may use it meanwhile.
  if (!name.startsWith('devices.join') && joinUnfinished(ctx.session.dir)) {
    throw new ApiError('LINKING', 'this profile is a new device still receiving its profile; finish with: nightjar devices join');
  }
  const multiDevice = hasDeviceGroup(ctx.session.db);
  if (!WITHOUT_AGENT.has(name) || multiDevice) {
    const agent = await ctx.session.loadAgent();
    // What the person's other devices did shows here too before anything is read or done (linking has its own steps).
    if (multiDevice && !name.startsWith('devices.link')) await agent.catchUp(CATCH_UP_MS).catch(() => undefined);
  }
  const op: Operation = OPERATIONS[name];
  return op(ctx, checked);
}
