/**
 * Talking to the relays for an operation: one bounded round of sending and
 * receiving (agent.sync), and waiting a bounded time for handshakes to
 * finish, with progress for whoever watches.
 */
import { AgentError } from '../agent/agent-api.js';
import { contactLabel } from '../chat/contacts.js';
import { ApiError } from './errors.js';
import type { Session } from './session.js';

export interface OpContext {
  readonly session: Session;
  /** Tells the caller what the operation waits for (null: nothing any more). */
  progress(text: string | null): void;
  /** Aborted when the caller goes away (Ctrl-C): waiting stops, what was saved stays. */
  readonly signal: AbortSignal;
}

/** Milliseconds one sync may take; NIGHTJAR_SYNC_TIMEOUT_MS overrides (tests, slow links). */
function syncTimeout(): number | undefined {
  const ms = Number(process.env['NIGHTJAR_SYNC_TIMEOUT_MS']);
  return Number.isFinite(ms) && ms > 0 ? ms : undefined;
}

/**
 * Sends what is pending until the relays confirm and receives what is
 * waiting (the chat layer stores it); with `receive: false` only sends
 * (a send costs the same however many contacts the profile has). Throws
 * ApiError RELAY_UNREACHABLE when a relay could not be reached; `saved`
 * says what that leaves behind.
 */
export async function deliver(ctx: OpContext, saved = 'nothing was lost; try again later', options: { receive?: boolean } = {}): Promise<void> {
  const { agent, chat } = ctx.session;
  const timeoutMs = syncTimeout();
  ctx.progress('talking to your relays');
  try {
    await chat.expireInvitations().catch((e: unknown) => {
      if (!(e instanceof AgentError)) throw e; // an invitation whose relay is down is withdrawn next time
    });
    await agent.sync({ ...(timeoutMs === undefined ? {} : { timeoutMs }), ...(options.receive === false ? { receive: false } : {}) });
  } catch (e) {
    if (e instanceof AgentError && e.code === 'RELAY_UNREACHABLE') throw new ApiError('RELAY_UNREACHABLE', `relay unreachable (${e.message}); ${saved}`, { cause: e });
    throw e;
  } finally {
    chat.deleteExpired();
    ctx.progress(null);
  }
}

/** Like deliver, but an unreachable relay is returned as a message instead of thrown. */
export async function deliverReporting(ctx: OpContext, saved?: string): Promise<string | undefined> {
  try {
    await deliver(ctx, saved);
    return undefined;
  } catch (e) {
    if (e instanceof ApiError && e.code === 'RELAY_UNREACHABLE') return e.message;
    throw e;
  }
}

/**
 * How long a command waits for a handshake it moved forward (the contact is
 * usually online then): 10 s; NIGHTJAR_HANDSHAKE_WAIT_MS overrides (tests).
 */
export function handshakeWaitMs(): number {
  const text = process.env['NIGHTJAR_HANDSHAKE_WAIT_MS'];
  const ms = Number(text);
  return text !== undefined && text !== '' && Number.isFinite(ms) && ms >= 0 ? ms : 10_000;
}

/**
 * Waits until the connections in `ids` are ready, at most `timeoutMs` or
 * until the caller goes away; returns those still not ready. Listens live
 * (agent.start) meanwhile, so the contact's answer arrives at once.
 */
export async function awaitConnections(ctx: OpContext, ids: readonly string[], timeoutMs: number): Promise<string[]> {
  const { agent, chat } = ctx.session;
  const waiting = (): string[] => ids.filter((id) => {
    const status = agent.connection(id)?.status;
    return status !== undefined && status !== 'ready';
  });
  if (waiting().length === 0 || timeoutMs <= 0 || ctx.signal.aborted) return waiting();
  const names = (): string =>
    waiting()
      .map((id) => chat.store.contactByConnection(id))
      .map((c) => (c ? contactLabel(c) : 'the contact'))
      .join(', ');
  ctx.progress(`waiting for ${names()} to answer`);
  if (!agent.isRunning) await agent.start();
  try {
    return await new Promise<string[]>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        unlisten();
        ctx.signal.removeEventListener('abort', done);
        resolve(waiting());
      };
      const timer = setTimeout(done, timeoutMs);
      const unlisten = chat.listen((e) => {
        if (e.type === 'contact' && waiting().length === 0) done();
      });
      ctx.signal.addEventListener('abort', done);
      if (waiting().length === 0) done();
    });
  } finally {
    ctx.progress(null);
  }
}
