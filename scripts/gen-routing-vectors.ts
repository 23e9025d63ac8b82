/**
 * Regenerates the private-routing test vectors: test/vectors/routing.json
 * (checked by test/routing/vectors.test.ts) and the vectors block of
 * docs/routing.md. Run after an intentional change to the sealed layers:
 *   node --import tsx scripts/gen-routing-vectors.ts
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { computeRoutingVectors, renderRoutingMarkdown, replaceRoutingBlock } from '../test/vectors/routing-vectors.js';

const jsonPath = new URL('../test/vectors/routing.json', import.meta.url);
const docPath = new URL('../docs/routing.md', import.meta.url);

const vectors = computeRoutingVectors();
writeFileSync(jsonPath, `${JSON.stringify(vectors, null, 2)}\n`);
writeFileSync(docPath, replaceRoutingBlock(readFileSync(docPath, 'utf8'), renderRoutingMarkdown(vectors)));
console.log(`wrote ${jsonPath.pathname} and the vectors block of ${docPath.pathname}`);
