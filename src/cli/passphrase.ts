/**
 * Asking a person at the terminal: passphrases (without echo; from an
 * environment variable when set) of a profile or of an archive, and plain
 * answers such as a name.
 */
import { ChatError } from '../chat/errors.js';

/** Whose passphrase a command needs: how it is named, where a script puts it, and which error says it was wrong. */
export interface PassphraseOf {
  /** In prompts, after "Passphrase for ": the profile's directory, or "the archive FILE". */
  readonly prompt: string;
  /** In errors: "profile DIR", "the archive FILE". */
  readonly name: string;
  /** The environment variable that holds it for scripts. */
  readonly env: string;
  /** The option that reads it from a file. */
  readonly fileOption: string;
  readonly isWrong: (e: unknown) => boolean;
}

/** The passphrase of the profile in `dir` ($NIGHTJAR_PASSPHRASE). */
export function profilePassphrase(dir: string): PassphraseOf {
  return {
    prompt: dir,
    name: `profile ${dir}`,
    env: 'NIGHTJAR_PASSPHRASE',
    fileOption: '--passphrase-file',
    isWrong: (e) => e instanceof ChatError && e.code === 'WRONG_PASSPHRASE',
  };
}

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

function fromEnv(of: PassphraseOf): string | undefined {
  const value = process.env[of.env];
  return value !== undefined && value !== '' ? value : undefined;
}

function noTerminal(of: PassphraseOf): ChatError {
  return new ChatError('NO_PASSPHRASE', `no passphrase for ${of.name}: set ${of.env}, give ${of.fileOption} FILE, or run in a terminal`);
}

/** A visible answer; `fallback` when the person just presses Enter. */
export async function askLine(question: string, fallback?: string): Promise<string> {
  if (!canAsk()) throw new ChatError('BAD_INPUT', `cannot ask "${question.trim()}" without a terminal`);
  const answer = (await ask(fallback === undefined ? question : `${question}[${fallback}] `, true)).trim();
  return answer === '' && fallback !== undefined ? fallback : answer;
}

/** A new passphrase, asked twice, again after a mismatch or an empty one (three tries). */
export async function newPassphrase(of: PassphraseOf): Promise<string> {
  const env = fromEnv(of);
  if (env !== undefined) return env;
  if (!canAsk()) throw noTerminal(of);
  for (let attempt = 1; ; attempt++) {
    const first = await ask(`New passphrase for ${of.prompt}: `, false);
    let problem: string;
    if (first === '') problem = 'The passphrase must not be empty.';
    else if ((await ask('Repeat the passphrase: ', false)) === first) return first;
    else problem = 'The two passphrases differ.';
    if (attempt === 3) throw new ChatError('NO_PASSPHRASE', problem.toLowerCase().replace(/\.$/, ''));
    process.stderr.write(`${problem} Try again.\n`);
  }
}

/**
 * Runs `unlock` with the passphrase: `known` or the environment's once,
 * or asked at the terminal, again after a wrong one (three tries).
 */
export async function withPassphrase<T>(of: PassphraseOf, known: string | undefined, unlock: (passphrase: string) => Promise<T>): Promise<T> {
  const given = known ?? fromEnv(of);
  if (given !== undefined) return unlock(given);
  if (!canAsk()) throw noTerminal(of);
  for (let attempt = 1; ; attempt++) {
    const passphrase = await ask(`Passphrase for ${of.prompt}: `, false);
    try {
      return await unlock(passphrase);
    } catch (e) {
      if (!of.isWrong(e) || attempt === 3) throw e;
      process.stderr.write('Wrong passphrase. Try again.\n');
    }
  }
}
