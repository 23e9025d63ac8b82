/**
 * `nightjar chat`: an interactive terminal chat. The agent runs the whole
 * time (agent.start()), so messages arrive live; lines typed without a
 * leading `/` go to the current contact. With --json it reads the same
 * lines and prints every event as one JSON object per line (for bots).
 */
import { Command } from 'commander';
import { createInterface } from 'node:readline';
import { contactLabel } from '../chat/contacts.js';
import { parseTtl } from '../chat/ttl.js';
import type { Session } from '../api/session.js';
import { contactView, requestView } from '../api/views.js';
import { ChatView } from './chat-view.js';
import { qrLines } from './qr.js';
import { codeLines } from './message-commands.js';
import { normalizeSecurityCode } from '../agent/security-code.js';
import { userMessage } from './errors.js';
import { contactText, keysChangedWarning, localRelayWarning, requestText, safe, style } from './output.js';
import { openNodeHere, profileOptions, type ProfileFlags } from './profile-access.js';

const HELP = [
  'Type a message and press Enter to send it to the current contact.',
  '/to <contact>      talk to another contact (alias, name, unique prefix or #id)',
  '/contacts          list contacts with new-message counts',
  '/history [n]       show the last n messages (default 20)',
  '/invite            make a one-time invitation link',
  '/connect <link>    use an invitation link or contact address',
  '/requests          list contact requests;  /accept N  /reject N',
  '/alias <alias>     set a local name for the current contact',
  '/verify [yes|clear|<code>]  show the security code to compare with the contact; mark it verified',
  '/disappear <t|off> disappearing-messages timer for the current contact',
  '/quit              leave (Ctrl-D works too)',
];

type Handler = (view: ChatView, session: Session, arg: string) => Promise<void> | void;

function needContact(view: ChatView): NonNullable<ChatView['current']> {
  if (!view.current) throw new Error('no current contact: use /to <contact> first');
  return view.current;
}

async function showHistory(view: ChatView, session: Session, limit: number): Promise<void> {
  const c = needContact(view);
  const messages = session.chat.history(c, limit);
  if (messages.length === 0) view.info(`No messages with ${safe(contactLabel(c))} yet.`);
  for (const m of messages) view.message(m);
  await session.chat.markRead(session.chat.unread(c));
  session.agent.kick();
}

const COMMANDS: Record<string, Handler> = {
  help: (view) => HELP.forEach((line) => view.info(line)),
  to: async (view, session, arg) => {
    view.current = session.chat.find(arg);
    view.setPrompt();
    const shown = contactView(view.current);
    view.show(shown, () => style.bold(`— ${contactText(shown)}`));
    if (shown.keysChanged) view.show(undefined, () => keysChangedWarning(shown));
    await showHistory(view, session, 20);
  },
  contacts: (view, session) => {
    const unread = new Map<number, number>();
    for (const m of session.chat.unread()) unread.set(m.contactId, (unread.get(m.contactId) ?? 0) + 1);
    const list = session.chat.contacts();
    if (list.length === 0) view.info('No contacts yet: /invite makes a link to give someone.');
    for (const c of list) {
      const shown = contactView(c, unread.get(c.id) ?? 0);
      view.show(shown, () => contactText(shown));
    }
  },
  history: (view, session, arg) => showHistory(view, session, arg === '' ? 20 : Math.max(1, Number.parseInt(arg, 10) || 20)),
  invite: async (view, session) => {
    const { contact, link } = await session.chat.invite();
    const relay = session.agent.connection(contact.connectionId)?.receiveRelays[0] ?? '';
    view.show({ type: 'invitation', contactId: contact.id, link }, () =>
      [
        ...qrLines(link, { json: false }),
        'One-time invitation (works once, for 7 days): give it to one person, who runs: nightjar connect \'<link>\'',
        link,
        ...localRelayWarning(relay),
      ].join('\n'),
    );
  },
  connect: async (view, session, arg) => {
    const c = await session.chat.connect(arg);
    session.agent.kick();
    view.show(contactView(c), () => `Connecting (contact #${c.id}); it completes as soon as the other side answers.`);
  },
  requests: (view, session) => {
    const list = session.chat.requests();
    if (list.length === 0) view.info('No contact requests.');
    for (const r of list) {
      const shown = requestView(r);
      view.show(shown, () => requestText(shown).replace(/nightjar (accept|reject)/g, '/$1'));
    }
  },
  accept: async (view, session, arg) => {
    const c = await session.chat.accept(Number(arg));
    session.agent.kick();
    view.show(contactView(c), () => `Accepted ${safe(contactLabel(c))} (contact #${c.id}); connecting…`);
  },
  reject: async (view, session, arg) => {
    const r = await session.chat.reject(Number(arg));
    view.info(`Rejected request ${r.n}.`);
  },
  alias: async (view, session, arg) => {
    view.current = await session.chat.setAlias(needContact(view), arg);
    view.setPrompt();
  },
  verify: async (view, session, arg) => {
    let c = session.chat.refreshSecurityCode(needContact(view));
    const code = c.securityCode;
    if (code === null) return view.info(`${safe(contactLabel(c))} is not connected yet: there is no security code to compare.`);
    if (arg === 'yes') c = await session.chat.setVerified(c, true);
    else if (arg === 'clear') c = await session.chat.setVerified(c, false);
    else if (arg !== '') {
      const typed = normalizeSecurityCode(arg);
      if (typed !== code) return view.error(typed === undefined ? 'a security code is 60 digits' : 'that is not the security code of this connection: someone may be in the middle; nothing was marked');
      c = await session.chat.setVerified(c, true);
    }
    view.current = c;
    const shown = contactView(c);
    view.show({ ...shown, code }, () =>
      arg === ''
        ? [`Security code with ${safe(contactLabel(c))}${shown.verified ? ' (verified)' : ''}:`, ...codeLines(code), 'Compare it with theirs; if it is the same: /verify yes'].join('\n')
        : `${safe(contactLabel(c))} is ${shown.verified ? 'verified' : 'not verified'}.`,
    );
  },
  disappear: async (view, session, arg) => {
    view.current = await session.chat.setTimer(needContact(view), parseTtl(arg));
    session.agent.kick();
    const m = session.chat.history(view.current, 1)[0];
    if (m) view.message(m);
  },
};

async function handleLine(view: ChatView, session: Session, line: string): Promise<'quit' | void> {
  const text = line.trim();
  if (text === '') return;
  if (text.startsWith('/')) {
    const [name = '', ...rest] = text.slice(1).split(/\s+/);
    if (name === 'quit' || name === 'exit' || name === 'q') return 'quit';
    const handler = COMMANDS[name];
    if (!handler) return view.error(`unknown command /${name} (see /help)`);
    return handler(view, session, rest.join(' '));
  }
  const contact = needContact(view);
  const m = await session.chat.send(contact, line);
  session.agent.kick(); // deliver now rather than at the next retry
  view.eraseTyped(line);
  view.message(m);
}

export async function runChat(session: Session, ref: string | undefined, json: boolean): Promise<void> {
  await session.loadAgent();
  const ready = session.chat.contacts().filter((c) => c.status === 'ready');
  const first = ref !== undefined ? session.chat.find(ref) : ready.length === 1 ? ready[0] : undefined;
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: !json && process.stdin.isTTY === true });
  const view = new ChatView(session.chat, rl, json, () => session.agent.kick());
  view.current = first;
  const unlisten = session.chat.listen((e) => view.onEvent(e));
  const sweep = setInterval(() => session.chat.deleteExpired(), 1000);
  const done = new Promise<void>((resolve) => rl.once('close', resolve));
  // Lines typed (or piped) while the start below runs wait behind it: readline reads from now on, and a line with no listener is lost.
  let queue = (async () => {
    if (!json) view.info(`Nightjar — ${safe(session.chat.displayName())}. /help lists commands.`);
    await COMMANDS['contacts']!(view, session, '');
    if (view.current) await COMMANDS['to']!(view, session, `#${view.current.id}`);
    view.setPrompt();
  })();
  rl.on('line', (line) => {
    // one line at a time, in order, even when a command waits for the network
    queue = queue.then(async () => {
      try {
        if ((await handleLine(view, session, line)) === 'quit') rl.close();
      } catch (e) {
        view.error(userMessage(e) ?? (e as Error).message);
      }
    });
  });
  await queue;

  let stopping = false;
  const running = session.agent.start().catch((e: unknown) => {
    if (!stopping) view.error(userMessage(e) ?? `agent stopped: ${(e as Error).message}`);
    rl.close();
  });
  rl.on('SIGINT', () => rl.close());
  const onTerm = (): void => rl.close();
  process.once('SIGTERM', onTerm);

  await done;
  stopping = true;
  await queue;
  process.off('SIGTERM', onTerm);
  clearInterval(sweep);
  unlisten();
  if (!json) process.stdout.write('\n');
  await session.agent.close(); // stops agent.start()
  await running;
}

export function chatCommand(): Command {
  return profileOptions(new Command('chat').description('interactive chat with live incoming messages').argument('[contact]', 'contact to talk to first')).action(
    async (ref: string | undefined, flags: ProfileFlags) => {
      const node = await openNodeHere(flags);
      try {
        await runChat(node.session, ref, flags.json === true);
      } finally {
        await node.close();
      }
    },
  );
}
