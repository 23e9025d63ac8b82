/**
 * bench/results/summary.json: the headline figures of every benchmark, as
 * plain numbers under stable names, merged phase by phase (a phase run
 * alone with --only updates its own keys and keeps the others). A quick run
 * writes quick-summary.json instead, so smoke-test figures never replace
 * real ones.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export function summaryFile(resultsFile: string): string {
  return join(dirname(resultsFile), basename(resultsFile) === 'quick.json' ? 'quick-summary.json' : 'summary.json');
}

export function mergeSummary(resultsFile: string, figures: Readonly<Record<string, number>>): void {
  for (const [key, value] of Object.entries(figures)) {
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new Error(`summary figure ${key} is not a finite number: ${String(value)}`);
  }
  const file = summaryFile(resultsFile);
  let existing: Record<string, number> = {};
  if (existsSync(file)) {
    try {
      existing = JSON.parse(readFileSync(file, 'utf8')) as Record<string, number>;
    } catch {
      // unreadable: start afresh
    }
  }
  mkdirSync(dirname(file), { recursive: true });
  const merged = { ...existing, ...figures };
  writeFileSync(file, JSON.stringify(Object.fromEntries(Object.entries(merged).sort(([a], [b]) => a.localeCompare(b))), null, 2) + '\n');
}
