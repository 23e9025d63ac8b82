/**
 * The part of the agent (src/agent/agent.ts) the chat layer uses. `Agent`
 * satisfies it structurally; tests drive the chat layer with a fake.
 */
import type { ConnectionInfo } from '../agent/agent-api.js';

export interface ChatAgent {
  readonly maxBodyLength: number;
  /** A new connection's steps on relays, nothing stored: store it with applyPrepared() inside an operation (docs/devices.md §3.6). */
  prepareInvitation(myInfo: Uint8Array): Promise<{ prepared: Uint8Array; link: string }>;
  prepareJoin(link: string, myInfo: Uint8Array): Promise<{ prepared: Uint8Array }>;
  /** Stores a prepared connection, inside an operation's application; returns its ID. */
  applyPrepared(prepared: Uint8Array): string;
  /** After a join is stored: sends its first message. */
  afterJoin(connectionId: string): Promise<void>;
  createAddress(): Promise<{ addressId: string; link: string }>;
  /** The address's queue deleted on its relay; forgetAddress() then drops its rows, inside an operation. */
  deleteAddressRemote(addressId: string): Promise<void>;
  forgetAddress(addressId: string): void;
  listAddresses(): { addressId: string; link: string }[];
  prepareAccept(requestId: string, myInfo: Uint8Array): Promise<{ prepared: Uint8Array }>;
  /** After an acceptance is stored: sends its first message. */
  afterAccept(connectionId: string): Promise<void>;
  /** Inside an operation's application. */
  rejectRequest(requestId: string): void;
  /** Runs `fn` in one transaction of the profile database: the agent's writes and the chat's commit together. */
  transaction<T>(fn: () => T): T;
  /** Persists synchronously and returns the message's seq; delivery happens in sync()/start(). */
  send(connectionId: string, body: Uint8Array): number;
  /** Deleting a connection: DEL queued, inside an operation; then finishDelete() on the same device. */
  queueDelete(connectionId: string): void;
  finishDelete(connectionId: string): Promise<void>;
  rotate(connectionId: string, relay?: string): Promise<void>;
  connection(id: string): ConnectionInfo | undefined;
  /** The connection's security code, once its key agreement is done. */
  securityCode(connectionId: string): string | undefined;
  /** Registers an operation on the profile (docs/devices.md §3): applied the same way on every device of the person. */
  registerOperation(name: string, apply: (args: Uint8Array, context: { readonly mine: boolean }) => unknown): void;
  /** Carries out a registered operation: at once with one device, through the device log with several. */
  operate(name: string, args: Uint8Array): Promise<unknown>;
  /** While a device-log event is applied, its time (ms): the chat layer's clock then. */
  applyingAt(): number | undefined;
}
