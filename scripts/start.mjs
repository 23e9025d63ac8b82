#!/usr/bin/env node
// `npm start`: compiles if anything changed, then runs `nightjar start` (a
// local relay and the interactive chat on it; src/cli/start-command.ts) in
// this terminal. Hints then name bin/nightjar as seen from where npm was run.
import { spawn, spawnSync } from 'node:child_process';
import { join, relative } from 'node:path';

const root = join(import.meta.dirname, '..');
const built = spawnSync(process.execPath, [join(root, 'scripts', 'build-if-stale.mjs')], { stdio: 'inherit' });
if (built.status !== 0) process.exit(built.status ?? 1);

const bin = join(root, 'bin', 'nightjar');
// A path with a slash runs from the shell as typed: bin/nightjar, ../bin/nightjar.
const shown = relative(process.env.INIT_CWD ?? process.cwd(), bin);
const child = spawn(bin, ['start', ...process.argv.slice(2)], { stdio: 'inherit', env: { ...process.env, NIGHTJAR_COMMAND: shown } });
// Ctrl-C reaches the child through the terminal; this process only waits for it.
process.on('SIGINT', () => undefined);
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
