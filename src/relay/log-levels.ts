/** The relay's log levels, apart from the logger so that the CLI can list them without loading it. */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug' | 'silent';
export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug', 'silent'];
