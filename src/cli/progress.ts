/**
 * Visible waiting: a spinner with what is awaited and the seconds so far,
 * on standard error when it is a terminal (never with --json, never in a
 * pipe), cleared when the wait ends.
 */
const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export interface Progress {
  /** Shows `text` (null: clears it). */
  set(text: string | null): void;
  stop(): void;
}

const silent: Progress = { set: () => undefined, stop: () => undefined };

export function progress(json: boolean | undefined): Progress {
  if (json || process.stderr.isTTY !== true) return silent;
  let text: string | null = null;
  let since = 0;
  let frame = 0;
  let timer: NodeJS.Timeout | undefined;
  const draw = (): void => {
    const seconds = Math.floor((Date.now() - since) / 1000);
    process.stderr.write(`\r\u001b[K${FRAMES[frame++ % FRAMES.length]} ${text}…${seconds >= 1 ? ` ${seconds} s` : ''}`);
  };
  const clear = (): void => {
    clearInterval(timer);
    timer = undefined;
    process.stderr.write('\r\u001b[K');
  };
  return {
    set(next) {
      if (next === text) return;
      if (text !== null) clear();
      text = next;
      if (next === null) return;
      since = Date.now();
      draw();
      timer = setInterval(draw, 100);
      timer.unref();
    },
    stop() {
      if (text !== null) clear();
      text = null;
    },
  };
}
