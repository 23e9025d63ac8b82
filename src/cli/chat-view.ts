/**
 * What the interactive chat shows when something happens: incoming
 * messages (live), delivery and read marks, contact changes, requests.
 * Lines are printed above the prompt without disturbing what is being typed.
 */
import type { Interface } from 'node:readline';
import type { Chat } from '../chat/chat.js';
import { contactLabel } from '../chat/contacts.js';
import type { ChatEvent } from '../chat/incoming.js';
import type { Contact, Message } from '../chat/store.js';
import { contactView, messageView, requestView } from '../api/views.js';
import { withCommandName } from './command-name.js';
import { marks, messageText, safe, style, type Json } from './output.js';

/** Terminal rows `text` takes (ANSI colours ignored, wide characters counted as one). */
function rowsOf(text: string, columns: number): number {
  const plain = text.replace(/\u001b\[[0-9;]*m/g, '');
  return plain.split('\n').reduce((n, line) => n + Math.max(1, Math.ceil([...line].length / columns)), 0);
}

export class ChatView {
  /** The contact lines typed without a leading `/` go to. */
  current: Contact | undefined;
  /** The message printed last, so its marks can be updated in place. */
  private last: { readonly messageId: number; readonly rows: number } | undefined;

  constructor(
    private readonly chat: Chat,
    private readonly rl: Interface,
    readonly json: boolean,
    /** Called after something was queued for sending (read receipts), to deliver it now. */
    private readonly afterSend: () => void,
  ) {}

  /** Whether lines can be redrawn (a terminal, not --json). */
  private get live(): boolean {
    return !this.json && (this.rl as Interface & { terminal?: boolean }).terminal === true;
  }

  private get columns(): number {
    return process.stdout.columns || 80;
  }

  /** Prints a line above the prompt (text mode) or a JSON line. */
  show(object: Json | undefined, text: () => string, messageId?: number): void {
    if (this.json) {
      if (object) process.stdout.write(JSON.stringify(object) + '\n');
      return;
    }
    const line = withCommandName(text());
    if (!this.live) {
      process.stdout.write(line + '\n');
      return;
    }
    process.stdout.write(`\r\u001b[K${line}\n`);
    this.last = messageId === undefined ? undefined : { messageId, rows: rowsOf(line, this.columns) };
    this.rl.prompt(true);
  }

  /** Removes the line just typed (it is printed again, formatted, as a message). */
  eraseTyped(line: string): void {
    if (!this.live) return;
    process.stdout.write(`\u001b[${rowsOf(this.rl.getPrompt() + line, this.columns)}A\r\u001b[J`);
  }

  info(text: string): void {
    this.show(undefined, () => style.dim(text));
  }

  error(text: string): void {
    if (this.json) process.stderr.write(`nightjar: ${text}\n`);
    else this.show(undefined, () => style.red(text));
  }

  setPrompt(): void {
    if (this.json) return;
    const name = this.current ? style.cyan(safe(contactLabel(this.current))) : style.dim('no contact');
    this.rl.setPrompt(`${name} › `);
    if (this.live) this.rl.prompt(true);
  }

  label(contactId: number): string {
    const c = this.chat.store.contact(contactId);
    return c ? contactLabel(c) : `#${contactId}`;
  }

  /** Prints a message; messages from other contacts than the current one are named on event lines too. */
  message(m: Message): void {
    const view = messageView(m, this.label(m.contactId));
    this.show(view, () => messageText(view, this.current?.id !== m.contactId), m.id);
  }

  /** New marks on one of our messages: redrawn in place if it is the last line, else a short status line. */
  private status(m: Message): void {
    const view = messageView(m, this.label(m.contactId));
    if (this.json) return this.show(view, () => '');
    if (this.live && this.last?.messageId === m.id) {
      const line = messageText(view);
      process.stdout.write(`\r\u001b[K\u001b[${this.last.rows}A\r\u001b[J${line}\n`);
      this.last = { messageId: m.id, rows: rowsOf(line, this.columns) };
      this.rl.prompt(true);
    } else if (this.current?.id === m.contactId && m.status !== 'sent') {
      this.info(`  ${marks(view)} ${style.dim(shorten(m.text))}`);
    }
  }

  /** Reacts to a change the agent reported (after its transaction committed). */
  onEvent(event: ChatEvent): void {
    switch (event.type) {
      case 'message': {
        const m = this.chat.message(event.messageId);
        if (!m) return;
        this.message(m);
        // Ours come here only when another of our devices sent them (the lines typed here are printed when typed).
        if (m.direction !== 'in') return;
        if (this.current?.id === m.contactId) {
          this.chat.markRead([m]).then(
            () => this.afterSend(),
            (e: unknown) => this.error(`could not mark the message read: ${e instanceof Error ? e.message : String(e)}`),
          );
        }
        return;
      }
      case 'status': {
        for (const id of event.messageIds) {
          const m = this.chat.message(id);
          if (m && m.kind === 'text') this.status(m);
        }
        return;
      }
      case 'contact': {
        const c = this.chat.store.contact(event.contactId);
        if (c && this.current?.id === c.id) {
          this.current = c;
          this.setPrompt();
        } else if (c && this.current === undefined && c.status === 'ready') {
          this.current = c;
          this.setPrompt();
        }
        if (c && this.json) this.show(contactView(c), () => '');
        return;
      }
      case 'request': {
        const r = this.chat.store.request(event.n);
        if (r) this.show(requestView(r), () => style.yellow(`Contact request ${r.n} from ${safe(r.displayName ?? '(no name)')}: /accept ${r.n} or /reject ${r.n}`));
        return;
      }
      case 'expired':
        this.show({ type: 'expired', messageIds: event.messageIds }, () => style.dim(`(${event.messageIds.length} message${event.messageIds.length === 1 ? '' : 's'} disappeared)`));
        return;
      case 'deviceRemoved':
        this.show({ type: 'deviceRemoved' }, () =>
          style.yellow('Another of your devices removed this one from your profile: nothing new reaches it, and what you type here is not sent. Link it again with: nightjar devices join'),
        );
        return;
    }
  }
}

function shorten(text: string): string {
  const one = safe(text).replace(/\s+/g, ' ');
  return one.length > 40 ? one.slice(0, 39) + '…' : one;
}
