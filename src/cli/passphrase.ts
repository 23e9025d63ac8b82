/** The profile passphrase: from NIGHTJAR_PASSPHRASE, else asked on the terminal without echo. */
import { ChatError } from '../chat/errors.js';

/** Reads one line from the terminal without echoing it; Ctrl-C aborts. */
function askHidden(question: string): Promise<string> {
  const input = process.stdin;
  return new Promise((resolve, reject) => {
    let typed = '';
    process.stderr.write(question);
    input.setRawMode(true);
    input.setEncoding('utf8');
    input.resume();
    const finish = (error?: Error): void => {
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
      process.stderr.write('\n');
      if (error) reject(error);
      else resolve(typed);
    };
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return finish();
        if (ch === '\u0003') return finish(new ChatError('NO_PASSPHRASE', 'cancelled'));
        if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
        else if (ch >= ' ') typed += ch;
      }
    };
    input.on('data', onData);
  });
}

/** `confirm` asks twice (for a new profile). */
export async function readPassphrase(dir: string, confirm: boolean): Promise<string> {
  const fromEnv = process.env['NIGHTJAR_PASSPHRASE'];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  if (!process.stdin.isTTY) throw new ChatError('NO_PASSPHRASE', `no passphrase for profile ${dir}: set NIGHTJAR_PASSPHRASE or run in a terminal`);
  const first = await askHidden(confirm ? `New passphrase for ${dir}: ` : `Passphrase for ${dir}: `);
  if (first === '') throw new ChatError('NO_PASSPHRASE', 'the passphrase must not be empty');
  if (confirm && (await askHidden('Repeat the passphrase: ')) !== first) throw new ChatError('NO_PASSPHRASE', 'the two passphrases differ');
  return first;
}
