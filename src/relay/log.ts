/**
 * The relay's logger. At the default levels nothing that could link users is
 * logged: no IP addresses, no queue or message IDs, no key material. Debug
 * lines may carry such metadata and say so in a `metadata: true` field, so
 * an operator who turns debug on knows what the log now holds.
 */
import { pino, type Logger } from 'pino';
import type { LogLevel } from './log-levels.js';

export { LOG_LEVELS, type LogLevel } from './log-levels.js';

export type RelayLogger = Logger;

/** A JSON-lines logger on stderr (stdout is kept for the relay's address). */
export function createRelayLogger(level: LogLevel): RelayLogger {
  // ISO-8601 times: readable in a terminal and in journald, sortable, unambiguous about the zone (UTC).
  // Level names rather than pino's numbers, for the same reason.
  return pino(
    { level, base: { component: 'relay' }, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } },
    pino.destination(2),
  );
}

/** For debug lines that contain metadata: marks them so they can be filtered out. */
export function metadataFields(fields: Record<string, unknown>): Record<string, unknown> {
  return { ...fields, metadata: true };
}
