/**
 * Regenerates the e2e test vectors: test/vectors/e2e.json (checked by
 * test/crypto/vectors.test.ts) and the vectors block of docs/e2e.md.
 * Run after an intentional change to the e2e wire format or KDFs:
 *   node --import tsx scripts/gen-e2e-vectors.ts
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { computeE2eVectors, renderVectorsMarkdown, replaceVectorsBlock } from '../test/vectors/e2e-scenario.js';

const jsonPath = new URL('../test/vectors/e2e.json', import.meta.url);
const docPath = new URL('../docs/e2e.md', import.meta.url);

const vectors = computeE2eVectors();
writeFileSync(jsonPath, `${JSON.stringify(vectors, null, 2)}\n`);
writeFileSync(docPath, replaceVectorsBlock(readFileSync(docPath, 'utf8'), renderVectorsMarkdown(vectors)));
console.log(`wrote ${jsonPath.pathname} and the vectors block of ${docPath.pathname}`);
