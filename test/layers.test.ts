/**
 * The module tree is the protocol stack (docs: the architecture brief):
 * each folder of src/ imports only folders below it, and the two users of
 * the transport, the relay and the client, never import each other.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const SRC = join(import.meta.dirname, '..', 'src');

/** Rank of each layer: a module may import only layers of a lower rank (relay and client share one). */
const RANK: Readonly<Record<string, number>> = {
  schema: 0, // the migration runner: every store (relay, agent, chat) uses it
  crypto: 0,
  protocol: 1,
  transport: 2,
  relay: 3,
  client: 3,
  agent: 4,
  chat: 5,
  api: 6,
  cli: 7,
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** The src/ folders a module imports from, by its relative import specifiers. */
function importedLayers(path: string): string[] {
  const text = readFileSync(path, 'utf8');
  const specifiers = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.[^']+)'/g)].map((m) => m[1]!);
  return specifiers.map((s) => relative(SRC, join(path, '..', s)).split('/')[0]!).filter((layer) => layer in RANK);
}

test('every src/ folder has a layer', () => {
  const folders = readdirSync(SRC).filter((name) => statSync(join(SRC, name)).isDirectory());
  assert.deepEqual(folders.filter((f) => !(f in RANK)), []);
});

test('lower layers never import higher ones; relay and client never import each other', () => {
  const violations: string[] = [];
  for (const path of files(SRC)) {
    const own = relative(SRC, path).split('/')[0]!;
    for (const layer of importedLayers(path)) {
      if (layer !== own && RANK[layer]! >= RANK[own]!) violations.push(`${relative(SRC, path)} imports ${layer}`);
    }
  }
  assert.deepEqual(violations, []);
});

test('the transport imports only protocol and crypto', () => {
  const layers = new Set(files(join(SRC, 'transport')).flatMap(importedLayers));
  layers.delete('transport');
  assert.deepEqual([...layers].sort().filter((l) => l !== 'crypto' && l !== 'protocol'), []);
  assert.ok(layers.has('protocol'), 'the check sees imports');
});
