#!/usr/bin/env node
// Compiles TypeScript (npm run build) only when something it reads changed
// since the last successful build: `npm start` then starts in a fraction of
// a second instead of recompiling every time. The stamp records the newest
// input it saw; dist/ missing or older inputs missing from it mean "build".
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const stamp = join(root, 'dist', '.build-stamp');

/** Newest modification time among the compiler's inputs, and how many there are (a deleted file changes the count). */
function inputs() {
  let newest = 0;
  let count = 0;
  const visit = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) visit(path);
      else if (entry.name.endsWith('.ts')) {
        newest = Math.max(newest, statSync(path).mtimeMs);
        count++;
      }
    }
  };
  visit(join(root, 'src'));
  for (const file of ['tsconfig.json', 'package.json', 'package-lock.json']) newest = Math.max(newest, statSync(join(root, file)).mtimeMs);
  return `${newest}:${count}`;
}

const now = inputs();
const built = existsSync(stamp) ? readFileSync(stamp, 'utf8').trim() : '';
if (built === now && existsSync(join(root, 'dist', 'cli', 'run.js'))) process.exit(0);
console.error('Compiling Nightjar (only after a change)…');
const tsc = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);
writeFileSync(stamp, now + '\n');
