/**
 * A child process for crash tests: opens an agent profile and sends
 * messages "m0".."m{n-1}" on one connection, syncing after each, printing
 * "sent i" once the relay confirmed. The test kills it with SIGKILL.
 *   node --import tsx test/helpers/agent-sender.ts <db> <connectionId> <from> <count>
 */
import Database from 'better-sqlite3-multiple-ciphers';
import { Agent } from '../../src/agent/agent.js';
import { watchParent } from '../../src/cli/parent-watch.js';
import { recorder } from './agent-harness.js';

watchParent(process.env); // started by a test through ./processes.ts: stop if the test is gone

const [dbPath, connectionId, from, count] = process.argv.slice(2);
const db = new Database(dbPath!);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
const agent = Agent.open(db, recorder());
for (let i = Number(from); i < Number(from) + Number(count); i++) {
  agent.send(connectionId!, new TextEncoder().encode(`m${i}`));
  await agent.sync().catch(() => undefined);
  process.stdout.write(`sent ${i}\n`);
}
await agent.close();
