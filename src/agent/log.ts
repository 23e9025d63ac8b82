/**
 * The agent's logger (pino, JSON lines on stderr, like the relay's
 * src/relay/log.ts). What the agent handles without failing the caller
 * (a relay that did not answer, a message that did not decrypt, a queue
 * that could not be deleted) is logged here instead of vanishing:
 *
 * - `debug`: expected trouble, retried or harmless (unreachable relays,
 *   refused commands). These lines may name a relay and say so with
 *   `metadata: true`;
 * - `warn`: what should not happen (a bug, a damaged row), with the
 *   error's name, code, message and cause, never a queue ID or a key.
 *
 * The level is NIGHTJAR_AGENT_LOG (error, warn, info, debug, silent;
 * default warn).
 */
import { pino, type Logger } from 'pino';

export type AgentLogger = Logger;

let shared: AgentLogger | undefined;

/** The process's agent logger, made on first use. */
export function defaultAgentLogger(): AgentLogger {
  shared ??= pino(
    {
      level: process.env['NIGHTJAR_AGENT_LOG'] ?? 'warn',
      base: { component: 'agent' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ fd: 2, sync: true }),
  );
  return shared;
}

/** What a log line keeps of an error: name, code, message, and the same of its cause. */
export function errorFields(e: unknown, depth = 0): Record<string, unknown> {
  if (!(e instanceof Error)) return { message: String(e) };
  const code = (e as { code?: unknown }).code;
  return {
    name: e.name,
    ...(typeof code === 'string' ? { code } : {}),
    message: e.message,
    ...(e.cause !== undefined && depth < 3 ? { cause: errorFields(e.cause, depth + 1) } : {}),
  };
}

/** For debug lines that name a relay: marked so they can be filtered out. */
export function withMetadata(fields: Record<string, unknown>): Record<string, unknown> {
  return { ...fields, metadata: true };
}
