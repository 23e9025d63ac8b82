/**
 * Errors of the node's API: a stable `code` and one line for a person. The
 * agent's and the chat layer's typed errors map onto it one to one; the
 * API adds its own codes for what only it can see. Anything else is a bug
 * and stays an ordinary Error.
 */
import { AgentError } from '../agent/agent-api.js';
import { ChatError } from '../chat/errors.js';
import { ArchiveError } from '../crypto/archive.js';
import { AddressError } from '../protocol/address.js';
import { MigrationError } from '../schema/migrations.js';

export type ApiErrorCode =
  | AgentError['code']
  | ChatError['code']
  | ArchiveError['code']
  | 'BAD_ADDRESS' // not a relay address
  | 'BAD_REQUEST' // a request the API cannot parse, or an unknown operation
  | 'RELAY_PASSWORD' // the relay wants a password we do not have, or refused ours
  | 'NOT_ENOUGH_RELAYS' // the routing mode asked for needs more relays than the list has
  | 'CODE_MISMATCH' // the security code typed in is not this connection's: someone may be in the middle
  | 'PROFILE_BUSY' // another process holds the profile and does not answer on its socket
  | 'PROFILE_TOO_NEW' // a newer Nightjar upgraded the profile's tables; this one cannot use them
  | 'DEVICE_LINK' // linking a device failed: the link expired, was used, or the other device gave up
  | 'LINKING' // this profile is a new device still receiving its profile: only `devices join` finishes it
  | 'ARCHIVE_EXISTS' // the file an export would write exists, and may not be replaced
  | 'ARCHIVE_FILE' // an archive file cannot be written or read (the system's reason in the message)
  | 'INTERRUPTED'; // the caller went away (Ctrl-C) while the operation waited

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message.replace(/\s*\n\s*/g, ' '), options);
  }
}

function agentMessage(e: AgentError): string {
  switch (e.code) {
    case 'BAD_LINK':
      return e.message;
    case 'LINK_USED':
      return 'this invitation link was already used; ask your contact for a new one';
    case 'ADDRESS_GONE':
      return `this contact address no longer exists (${e.message})`;
    case 'NO_RELAYS':
      return 'no relays configured; add one with: nightjar relays add nightjar://...';
    case 'RELAY_UNREACHABLE':
      return `relay unreachable: ${e.message}; nothing was lost, try again later`;
    default:
      return e.message;
  }
}

/** The stores of the profile database (the relay's is not the API's concern). */
const PROFILE_STORES: ReadonlySet<string> = new Set(['agent', 'chat']);

/** The API error for an error a user can cause, or undefined for a bug. */
export function toApiError(e: unknown): ApiError | undefined {
  if (e instanceof ApiError) return e;
  // The original stays as `cause`: the one line is for a person, the chain for whoever debugs.
  if (e instanceof AgentError) return new ApiError(e.code, agentMessage(e), { cause: e });
  if (e instanceof ChatError) return new ApiError(e.code, e.message, { cause: e });
  if (e instanceof ArchiveError) return new ApiError(e.code, e.message, { cause: e });
  if (e instanceof AddressError) return new ApiError('BAD_ADDRESS', `invalid relay address: ${e.message}`, { cause: e });
  if (e instanceof MigrationError && e.code === 'NEWER' && PROFILE_STORES.has(e.store)) {
    return new ApiError('PROFILE_TOO_NEW', `this profile was upgraded by a newer Nightjar (${e.store} schema version ${e.version}); upgrade Nightjar to open it; nothing was changed`, { cause: e });
  }
  return undefined;
}
