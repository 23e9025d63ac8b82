/** An in-memory stand-in for the agent, recording what the chat layer asks of it. */
import { AgentError, type ConnectionInfo, type ConnectionStatus } from '../../src/agent/agent-api.js';
import type Database from 'better-sqlite3-multiple-ciphers';
import type { ChatAgent } from '../../src/chat/agent-port.js';

export interface SentBody {
  readonly connectionId: string;
  readonly seq: number;
  readonly body: Uint8Array;
}

export class FakeAgent implements ChatAgent {
  maxBodyLength = 15_000;
  readonly sent: SentBody[] = [];
  readonly deleted: string[] = [];
  readonly rejected: string[] = [];
  readonly rotated: { connectionId: string; relay: string | undefined }[] = [];
  readonly status = new Map<string, ConnectionStatus>();
  private readonly seqs = new Map<string, number>();
  private readonly addressList: { addressId: string; link: string }[] = [];
  private n = 0;

  /** `db`: the profile database whose transactions transaction() runs in, as the agent's do. */
  constructor(private readonly db?: Database.Database) {}

  transaction<T>(fn: () => T): T {
    return this.db ? this.db.transaction(fn)() : fn();
  }

  private readonly operations = new Map<string, (args: Uint8Array, context: { readonly mine: boolean }) => unknown>();

  registerOperation(name: string, apply: (args: Uint8Array, context: { readonly mine: boolean }) => unknown): void {
    this.operations.set(name, apply);
  }

  /** As the agent does on a profile with one device: at once, in one transaction. */
  async operate(name: string, args: Uint8Array): Promise<unknown> {
    const apply = this.operations.get(name);
    if (!apply) throw new Error(`no operation ${name}`);
    return this.transaction(() => apply(args, { mine: true }));
  }

  applyingAt(): number | undefined {
    return undefined;
  }

  private newConnection(status: ConnectionStatus): string {
    const id = `conn-${++this.n}`;
    this.status.set(id, status);
    return id;
  }

  /** A prepared connection here is its status and ID, stored by applyPrepared. */
  async prepareInvitation(_myInfo?: Uint8Array): Promise<{ prepared: Uint8Array; link: string }> {
    const id = `conn-${++this.n}`;
    return { prepared: new TextEncoder().encode(`invited ${id}`), link: `nightjar:invite#fake${this.n}` };
  }

  async prepareJoin(link: string): Promise<{ prepared: Uint8Array }> {
    if (!link.startsWith('nightjar:')) throw new AgentError('BAD_LINK', 'not a Nightjar link');
    return { prepared: new TextEncoder().encode(`joining conn-${++this.n}`) };
  }

  applyPrepared(prepared: Uint8Array): string {
    const [status, id] = new TextDecoder().decode(prepared).split(' ') as [ConnectionStatus, string];
    this.status.set(id, status);
    return id;
  }

  readonly joined: string[] = [];

  async afterJoin(connectionId: string): Promise<void> {
    this.joined.push(connectionId);
  }

  async createAddress(): Promise<{ addressId: string; link: string }> {
    const a = { addressId: `addr-${++this.n}`, link: `nightjar:address#fake${this.n}` };
    this.addressList.push(a);
    return a;
  }

  async deleteAddressRemote(addressId: string): Promise<void> {
    if (!this.addressList.some((a) => a.addressId === addressId)) throw new AgentError('UNKNOWN_CONNECTION', 'no such contact address');
  }

  forgetAddress(addressId: string): void {
    const i = this.addressList.findIndex((a) => a.addressId === addressId);
    if (i >= 0) this.addressList.splice(i, 1);
  }

  listAddresses(): { addressId: string; link: string }[] {
    return [...this.addressList];
  }

  async prepareAccept(): Promise<{ prepared: Uint8Array }> {
    return { prepared: new TextEncoder().encode(`accepting conn-${++this.n}`) };
  }

  async afterAccept(connectionId: string): Promise<void> {
    this.joined.push(connectionId);
  }

  rejectRequest(requestId: string): void {
    this.rejected.push(requestId);
  }

  send(connectionId: string, body: Uint8Array): number {
    const status = this.status.get(connectionId);
    if (status === undefined) throw new AgentError('UNKNOWN_CONNECTION', connectionId);
    // Like the agent: a handshake under way can queue messages (they leave once it is done).
    if (status !== 'ready' && status !== 'accepting' && status !== 'joining') throw new AgentError('NOT_READY', `${connectionId} is ${status}`);
    const seq = (this.seqs.get(connectionId) ?? 0) + 1;
    this.seqs.set(connectionId, seq);
    this.sent.push({ connectionId, seq, body });
    return seq;
  }

  queueDelete(connectionId: string): void {
    if (!this.status.has(connectionId) || this.status.get(connectionId) === 'deleted') throw new AgentError('UNKNOWN_CONNECTION', connectionId);
  }

  async finishDelete(connectionId: string): Promise<void> {
    if (!this.status.has(connectionId) || this.status.get(connectionId) === 'deleted') return;
    this.status.set(connectionId, 'deleted');
    this.deleted.push(connectionId);
  }

  async rotate(connectionId: string, relay?: string): Promise<void> {
    this.rotated.push({ connectionId, relay });
  }

  /** Codes the test sets per connection. */
  readonly codes = new Map<string, string>();

  securityCode(connectionId: string): string | undefined {
    return this.codes.get(connectionId);
  }

  connection(id: string): ConnectionInfo | undefined {
    const status = this.status.get(id);
    return status === undefined ? undefined : { connectionId: id, status, receiveRelays: [], pendingOutgoing: 0 };
  }
}
