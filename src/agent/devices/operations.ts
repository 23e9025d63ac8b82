/**
 * Operations on the profile (docs/devices.md §3.1): what the agent and the
 * chat layer change, each under a name, so that a change made on one
 * device is applied the same way on every device of the person.
 *
 *   OP event body = name short (UTF-8, 1..255 bytes) | args rest
 *
 * `operate(name, args)` applies the operation at once on a profile that
 * lives on one device (the same function, in one transaction, with the
 * agent's own clock and randomness), and, on a profile with a device group,
 * proposes it to the log and resolves once this device has applied it
 * where it landed.
 */
import { Reader, Writer } from '../../protocol/codec.js';
import { ProtocolError } from '../../protocol/errors.js';
import { randomBytes } from '../../crypto/random.js';
import type { Determinism } from '../determinism.js';
import { EventKind, type DeviceEvent } from './event.js';
import { DeviceLogError } from './log-entry.js';
import type { ApplyContext, ApplyFunction, Replica } from './replica.js';

/** Applies an operation's arguments to the profile; deterministic (docs/devices.md §3.2), inside the caller's transaction. */
export type OperationApply = (args: Uint8Array, context: ApplyContext) => unknown;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

export function encodeOperation(name: string, args: Uint8Array): Uint8Array {
  const n = utf8.encode(name);
  if (n.length === 0 || n.length > 0xff) throw new RangeError(`an operation name is 1..255 bytes, got ${n.length}`);
  return new Writer().short(n).bytes(args).finish();
}

export function decodeOperation(body: Uint8Array): { readonly name: string; readonly args: Uint8Array } {
  const r = new Reader(body, 'CMD_SYNTAX');
  try {
    const n = r.short('operation name');
    if (n.length === 0) throw new DeviceLogError('MALFORMED', 'empty operation name');
    return { name: fromUtf8.decode(n), args: r.rest() };
  } catch (e) {
    if (e instanceof ProtocolError || e instanceof TypeError) throw new DeviceLogError('MALFORMED', `bad operation: ${(e as Error).message}`, { cause: e });
    throw e;
  }
}

export class Operations {
  private readonly ops = new Map<string, OperationApply>();
  private replica: Replica | undefined;

  constructor(
    private readonly determinism: Determinism,
    /** The agent store's transaction. */
    private readonly tx: <T>(fn: () => T) => T,
  ) {}

  register(name: string, apply: OperationApply): void {
    if (this.ops.has(name)) throw new Error(`operation ${name} registered twice`);
    encodeOperation(name, new Uint8Array(0)); // checks the name
    this.ops.set(name, apply);
  }

  /** From now on operations go through this replica (the profile has a device group). */
  attach(replica: Replica | undefined): void {
    this.replica = replica;
  }

  get replicated(): boolean {
    return this.replica !== undefined;
  }

  /** Applies (one device) or proposes (a group) the operation; resolves with what its apply function returned. */
  operate(name: string, args: Uint8Array): Promise<unknown> {
    const apply = this.ops.get(name);
    if (!apply) return Promise.reject(new Error(`no operation ${name}`));
    if (this.replica) return this.replica.propose(EventKind.OP, encodeOperation(name, args));
    try {
      const context: ApplyContext = { position: 0, time: this.determinism.clock(), random: randomBytes, mine: true, author: 0 };
      return Promise.resolve(this.tx(() => apply(args, context)));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * The replica's apply function: runs the named operation with the
   * event's clock and randomness. An operation this code does not know
   * was made by a newer Nightjar: DeviceLogError VERSION stops the replica
   * (docs/devices.md §3.2) rather than skip what the other devices apply.
   */
  readonly applier: ApplyFunction = (event: DeviceEvent, context: ApplyContext): unknown => {
    const { name, args } = decodeOperation(event.body);
    const apply = this.ops.get(name);
    if (!apply) throw new DeviceLogError('VERSION', `operation ${name}: made by a newer Nightjar`);
    return this.determinism.run(context.time, context.random, () => apply(args, context), event.author);
  };
}
