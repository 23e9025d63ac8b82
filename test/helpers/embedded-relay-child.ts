/**
 * A relay embedded in a plain node process, as a program that imports
 * `startRelay` would run it (not through bin/nightjar): the test that
 * starts it decides whether node gets Nightjar's OpenSSL configuration.
 *
 *   node [--openssl-config=config/openssl-nightjar.cnf] --import tsx test/helpers/embedded-relay-child.ts <dataDir>
 *
 * Prints one JSON line, {"address": ...} once listening or
 * {"error": {"name", "message"}} if startRelay threw, and with a relay
 * running stays until its standard input closes.
 */
import { startRelay } from '../../src/relay/server.js';

const dataDir = process.argv[2];
if (!dataDir) throw new Error('usage: embedded-relay-child.ts <dataDir>');
try {
  const relay = await startRelay({ dataDir, port: 0, logLevel: 'silent', powBits: 0 });
  process.stdout.write(JSON.stringify({ address: relay.addressText }) + '\n');
  process.stdin.resume();
  process.stdin.once('end', () => void relay.close().then(() => process.exit(0)));
} catch (e) {
  const error = e instanceof Error ? { name: e.name, message: e.message } : { name: 'unknown', message: String(e) };
  process.stdout.write(JSON.stringify({ error }) + '\n');
  process.exit(1);
}
