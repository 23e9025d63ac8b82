#!/usr/bin/env node
// `npm start`: a local relay and the interactive chat on it, in one go.
// First run: makes the relay (~/.nightjar/relay) and a profile
// (~/.nightjar/profile, or $NIGHTJAR_PROFILE; it asks for a passphrase
// unless $NIGHTJAR_PASSPHRASE is set) and puts the relay in the profile's
// relay list. Later runs reuse both. The relay stops when the chat ends.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const bin = join(import.meta.dirname, '..', 'bin', 'nightjar');
const relayDir = process.env.NIGHTJAR_RELAY_DIR ?? join(homedir(), '.nightjar', 'relay');
const profile = process.env.NIGHTJAR_PROFILE ?? join(homedir(), '.nightjar', 'profile');
const env = { ...process.env, NIGHTJAR_PROFILE: profile };
const run = (...args) => spawnSync(bin, args, { stdio: 'inherit', env }).status ?? 1;

const relay = spawn(bin, ['relay', 'start', '--json', '--data-dir', relayDir, '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'inherit'] });
const address = await new Promise((resolve, reject) => {
  createInterface({ input: relay.stdout }).once('line', (line) => resolve(JSON.parse(line).address));
  relay.once('exit', (code) => reject(new Error(`the relay did not start (exit ${code})`)));
}).catch((e) => {
  console.error(`nightjar: ${e.message}`);
  process.exit(1);
});
const stopRelay = () => relay.exitCode === null && relay.kill('SIGTERM');
process.on('exit', stopRelay);
console.log(`relay: ${address}`);

if (!existsSync(join(profile, 'nightjar.db'))) {
  const name = process.env.NIGHTJAR_NAME ?? userInfo().username;
  if (run('init', '--name', name) !== 0) process.exit(1);
  // Private routing needs a second relay to forward through; until one is added, allow direct sending.
  console.log('With only this relay, messages go directly to it; add a second relay (nightjar relays add …) for private routing.');
  if (run('routing', 'private', '--direct-fallback') !== 0) process.exit(1);
}
const listed = spawnSync(bin, ['relays', 'list', '--json'], { env, encoding: 'utf8' });
if (listed.status !== 0) {
  process.stderr.write(listed.stderr);
  process.exit(1);
}
if (!listed.stdout.includes(address) && run('relays', 'add', address) !== 0) process.exit(1);
console.log('In the chat, /invite makes a link for someone to connect with; /help lists the commands.');
// Asynchronously, so this process keeps serving the relay's pipes while the chat runs.
const chat = spawn(bin, ['chat'], { stdio: 'inherit', env });
process.exitCode = await new Promise((resolve) => chat.once('exit', (code) => resolve(code ?? 1)));
stopRelay();
