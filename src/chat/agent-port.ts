/**
 * The part of the agent (src/agent/agent.ts) the chat layer uses. `Agent`
 * satisfies it structurally; tests drive the chat layer with a fake.
 */
import type { ConnectionInfo } from '../agent/agent-api.js';

export interface ChatAgent {
  readonly maxBodyLength: number;
  createInvitation(myInfo: Uint8Array): Promise<{ connectionId: string; link: string }>;
  connect(link: string, myInfo: Uint8Array): Promise<{ connectionId: string }>;
  createAddress(): Promise<{ addressId: string; link: string }>;
  deleteAddress(addressId: string): Promise<void>;
  listAddresses(): { addressId: string; link: string }[];
  acceptRequest(requestId: string, myInfo: Uint8Array): Promise<{ connectionId: string }>;
  rejectRequest(requestId: string): void;
  /** Runs `fn` in one transaction of the profile database: the agent's writes and the chat's commit together. */
  transaction<T>(fn: () => T): T;
  /** Persists synchronously and returns the message's seq; delivery happens in sync()/start(). */
  send(connectionId: string, body: Uint8Array): number;
  deleteConnection(connectionId: string): Promise<void>;
  rotate(connectionId: string, relay?: string): Promise<void>;
  connection(id: string): ConnectionInfo | undefined;
  /** The connection's security code, once its key agreement is done. */
  securityCode(connectionId: string): string | undefined;
}
