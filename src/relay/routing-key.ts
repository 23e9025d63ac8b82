/**
 * The relay's routing key: a long-lived X25519 key that senders seal
 * forwarded requests to (docs/routing.md). Made on first start and kept in
 * the data directory beside the TLS key (mode 0600); certified by an
 * Ed25519 signature of the relay's certificate key over
 * "nightjar/routing-key/v1" ‖ routingKey, sent in the relay hello.
 */
import { createPrivateKey, sign as nodeSign } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dhPublicKey, generateDhKeyPair } from '../crypto/keys.js';
import { routingKeySignedData } from '../protocol/forward-crypto.js';
import type { RelayIdentity } from './certificate.js';

export const ROUTING_KEY_FILE = 'relay-routing-key';

export interface RoutingKey {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
  /** The certificate key's signature of "nightjar/routing-key/v1" ‖ publicKey. */
  readonly signature: Uint8Array;
}

/** Signs `routingKey` with the Ed25519 key of the relay's TLS identity. */
export function certifyRoutingKey(identityKeyPem: string, routingKey: Uint8Array): Uint8Array {
  return new Uint8Array(nodeSign(null, routingKeySignedData(routingKey), createPrivateKey(identityKeyPem)));
}

async function readOrCreatePrivateKey(dataDir: string): Promise<Uint8Array> {
  const path = join(dataDir, ROUTING_KEY_FILE);
  try {
    const raw = new Uint8Array(await readFile(path));
    if (raw.length !== 32) throw new Error(`${path} is not a 32-byte routing key`);
    return raw;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const fresh = generateDhKeyPair().privateKey;
  try {
    // 'wx' refuses to overwrite: two relays starting on one new directory cannot swap keys.
    await writeFile(path, fresh, { mode: 0o600, flag: 'wx' });
    return fresh;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    return new Uint8Array(await readFile(path));
  }
}

/** The routing key in `dataDir`, made on first use, certified by `identity`. */
export async function loadOrCreateRoutingKey(dataDir: string, identity: RelayIdentity): Promise<RoutingKey> {
  const privateKey = await readOrCreatePrivateKey(dataDir);
  const publicKey = dhPublicKey(privateKey);
  return { privateKey, publicKey, signature: certifyRoutingKey(identity.keyPem, publicKey) };
}
