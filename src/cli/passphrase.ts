/**
 * Asking a person at the terminal: the profile passphrase (without echo;
 * from NIGHTJAR_PASSPHRASE when set) and plain answers such as a name.
 */
import { ChatError } from '../chat/errors.js';

/** Reads one line from the terminal, echoing it or not; Ctrl-C cancels (NO_PASSPHRASE "cancelled"). */
function ask(question: string, echo: boolean): Promise<string> {
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
        if (ch === '\r' || ch === '\n') return finish();
        if (ch === '\u0003' || (ch === '\u0004' && typed === '')) return finish(new ChatError('NO_PASSPHRASE', 'cancelled'));
        if (ch === '\u007f' || ch === '\b') {
          if (typed.length > 0 && echo) process.stderr.write('\b \b');
          typed = [...typed].slice(0, -1).join('');
        } else if (ch >= ' ') {
          typed += ch;
          if (echo) process.stderr.write(ch);
        }
      }
    };
    input.on('data', onData);
  });
}

/** An answer typed without echo (a password). */
export function askHidden(question: string): Promise<string> {
  return ask(question, false);
}

/** Whether a person can be asked (standard input and error are a terminal). */
export function canAsk(): boolean {
  return process.stdin.isTTY === true;
}

function fromEnv(): string | undefined {
  const value = process.env['NIGHTJAR_PASSPHRASE'];
  return value !== undefined && value !== '' ? value : undefined;
}

function noTerminal(dir: string): ChatError {
  return new ChatError('NO_PASSPHRASE', `no passphrase for profile ${dir}: set NIGHTJAR_PASSPHRASE or run in a terminal`);
}

/** A visible answer; `fallback` when the person just presses Enter. */
export async function askLine(question: string, fallback?: string): Promise<string> {
  if (!canAsk()) throw new ChatError('BAD_INPUT', `cannot ask "${question.trim()}" without a terminal`);
  const answer = (await ask(fallback === undefined ? question : `${question}[${fallback}] `, true)).trim();
  return answer === '' && fallback !== undefined ? fallback : answer;
}

/** A new passphrase, asked twice, again after a mismatch or an empty one (three tries). */
export async function newPassphrase(dir: string): Promise<string> {
  const env = fromEnv();
  if (env !== undefined) return env;
  if (!canAsk()) throw noTerminal(dir);
  for (let attempt = 1; ; attempt++) {
    const first = await ask(`New passphrase for ${dir}: `, false);
    let problem: string;
    if (first === '') problem = 'The passphrase must not be empty.';
    else if ((await ask('Repeat the passphrase: ', false)) === first) return first;
    else problem = 'The two passphrases differ.';
    if (attempt === 3) throw new ChatError('NO_PASSPHRASE', problem.toLowerCase().replace(/\.$/, ''));
    process.stderr.write(`${problem} Try again.\n`);
  }
}

/**
 * Runs `unlock` with the profile's passphrase: `known` or
 * NIGHTJAR_PASSPHRASE once, or asked at the terminal, again after a wrong
 * one (three tries).
 */
export async function withPassphrase<T>(dir: string, known: string | undefined, unlock: (passphrase: string) => Promise<T>): Promise<T> {
  const given = known ?? fromEnv();
  if (given !== undefined) return unlock(given);
  if (!canAsk()) throw noTerminal(dir);
  for (let attempt = 1; ; attempt++) {
    const passphrase = await ask(`Passphrase for ${dir}: `, false);
    try {
      return await unlock(passphrase);
    } catch (e) {
      if (!(e instanceof ChatError && e.code === 'WRONG_PASSPHRASE') || attempt === 3) throw e;
      process.stderr.write('Wrong passphrase. Try again.\n');
    }
  }
}
