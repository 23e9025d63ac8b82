/** Turning errors a user can cause into the one line `nightjar: ...` that main prints. */
import { ApiError, toApiError } from '../api/errors.js';
import { withCommandName } from './command-name.js';

/** A usage problem the CLI itself detects (as opposed to the layers below). */
export class CliError extends Error {
  override readonly name = 'CliError';
}

/** Exit status for an error: 130 after Ctrl-C (as shells report SIGINT), 1 otherwise. */
export function exitCodeOf(e: unknown): number {
  return e instanceof ApiError && e.code === 'INTERRUPTED' ? 130 : 1;
}

/** The line to print for an error a user can cause, or undefined for a bug. */
export function userMessage(e: unknown): string | undefined {
  const text = e instanceof CliError ? e.message : toApiError(e)?.message;
  return text === undefined ? undefined : withCommandName(text.replace(/\s*\n\s*/g, ' '));
}
