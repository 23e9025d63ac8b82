/**
 * What the relay counts for its operator: aggregate numbers only, never an
 * ID or an address. Connections count commands, messages in (SEND answered
 * OK, log appends included) and out (MSG, pushed or fetched, and LENT) and
 * errors by code; the server logs
 * the counts once a minute (`relay stats`) and starts them again from zero.
 */
export interface StatsLine {
  /** Connections open now, and opened since the last line. */
  readonly connections: number;
  readonly connectionsOpened: number;
  /** Queues (logs included), stored messages and stored log entries now. */
  readonly queues: number;
  readonly messagesStored: number;
  readonly entriesStored: number;
  /** Since the last line. */
  readonly commands: number;
  readonly messagesIn: number;
  readonly messagesOut: number;
  /** Error answers since the last line, by code. */
  readonly errors: Readonly<Record<string, number>>;
}

export class RelayCounters {
  commands = 0;
  messagesIn = 0;
  messagesOut = 0;
  connectionsOpened = 0;
  private errors = new Map<string, number>();

  error(code: string): void {
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }

  /** The counts since the last call, and zero again. */
  take(): Pick<StatsLine, 'commands' | 'messagesIn' | 'messagesOut' | 'connectionsOpened' | 'errors'> {
    const taken = {
      commands: this.commands,
      messagesIn: this.messagesIn,
      messagesOut: this.messagesOut,
      connectionsOpened: this.connectionsOpened,
      errors: Object.fromEntries([...this.errors].sort(([a], [b]) => a.localeCompare(b))),
    };
    this.commands = this.messagesIn = this.messagesOut = this.connectionsOpened = 0;
    this.errors = new Map();
    return taken;
  }
}
