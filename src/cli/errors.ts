/** Turning errors a user can cause into the one line `nightjar: ...` that main prints. */
import { AgentError } from '../agent/agent-api.js';
import { ChatError } from '../chat/errors.js';
import { AddressError } from '../protocol/address.js';
import { ConfigError } from '../relay/config.js';
import { RelayStartError } from '../relay/server.js';

/** A usage problem the CLI itself detects (as opposed to the chat or agent layers). */
export class CliError extends Error {
  override readonly name = 'CliError';
}

function agentMessage(e: AgentError): string {
  switch (e.code) {
    case 'BAD_LINK':
      return `invalid link: ${e.message}`;
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

/** The line to print for an error a user can cause, or undefined for a bug. */
export function userMessage(e: unknown): string | undefined {
  let text: string | undefined;
  if (e instanceof AgentError) text = agentMessage(e);
  else if (e instanceof AddressError) text = `invalid relay address: ${e.message}`;
  else if (e instanceof ChatError || e instanceof CliError || e instanceof RelayStartError || e instanceof ConfigError) text = e.message;
  return text?.replace(/\s*\n\s*/g, ' ');
}
