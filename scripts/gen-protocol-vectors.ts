/**
 * Regenerates the relay-protocol test vectors: test/vectors/protocol.json
 * (checked by test/protocol/vectors.test.ts) and the vectors block of
 * docs/protocol.md. Run after an intentional change to the wire format:
 *   node --import tsx scripts/gen-protocol-vectors.ts
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { computeProtocolVectors, renderVectorsMarkdown, replaceVectorsBlock } from '../test/vectors/protocol-vectors.js';

const jsonPath = new URL('../test/vectors/protocol.json', import.meta.url);
const docPath = new URL('../docs/protocol.md', import.meta.url);

const vectors = computeProtocolVectors();
writeFileSync(jsonPath, `${JSON.stringify(vectors, null, 2)}\n`);
writeFileSync(docPath, replaceVectorsBlock(readFileSync(docPath, 'utf8'), renderVectorsMarkdown(vectors)));
console.log(`wrote ${jsonPath.pathname} and the vectors block of ${docPath.pathname}`);
