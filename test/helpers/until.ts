/** Waits (polling every few milliseconds) until `ok()` holds; fails naming `what` after `ms`. */
export async function until(what: string, ok: () => boolean, ms = 5000, everyMs = 2): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
