/**
 * The relay's TLS identity: an Ed25519 key and a self-signed certificate,
 * made on first start and kept in the data directory. Clients pin the
 * SHA-256 of the certificate (its fingerprint), so no CA is involved and
 * the certificate never needs renewing.
 */
import 'reflect-metadata'; // @peculiar/x509 needs the Reflect metadata API at import time
import * as x509 from '@peculiar/x509';
import { X509Certificate, webcrypto } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256 } from '../crypto/kdf.js';

// node's webcrypto is the standard Crypto interface; the DOM type names differ only nominally.
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export const KEY_FILE = 'relay-key.pem';
export const CERT_FILE = 'relay-cert.pem';

export interface RelayIdentity {
  readonly keyPem: string;
  readonly certPem: string;
  /** SHA-256 of the DER certificate. */
  readonly fingerprint: Uint8Array;
}

const ED25519 = { name: 'Ed25519' };
const CERT_YEARS = 100;

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`.replace('\n\n', '\n');
}

/** SHA-256 of the certificate's DER encoding. */
export function certificateFingerprint(certPem: string): Uint8Array {
  return sha256(new Uint8Array(new X509Certificate(certPem).raw));
}

/** Makes a fresh Ed25519 key and a self-signed certificate for it. */
export async function generateIdentity(): Promise<RelayIdentity> {
  const keys = (await webcrypto.subtle.generateKey(ED25519, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    // A random serial: nothing about the relay or its start time leaks through it.
    serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString('hex').replace(/^[89a-f]/, '1'),
    name: 'CN=nightjar relay',
    notBefore: new Date(now - 86_400_000),
    notAfter: new Date(now + CERT_YEARS * 365 * 86_400_000),
    signingAlgorithm: ED25519,
    keys: keys as unknown as x509.X509CertificateCreateSelfSignedParams['keys'],
  });
  const certPem = cert.toString('pem') + '\n';
  const keyPem = pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return { keyPem, certPem, fingerprint: certificateFingerprint(certPem) };
}

/** Reads the identity in `dataDir`, or undefined if there is none yet. */
export async function readIdentity(dataDir: string): Promise<RelayIdentity | undefined> {
  let keyPem: string;
  let certPem: string;
  try {
    [keyPem, certPem] = await Promise.all([readFile(join(dataDir, KEY_FILE), 'utf8'), readFile(join(dataDir, CERT_FILE), 'utf8')]);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return { keyPem, certPem, fingerprint: certificateFingerprint(certPem) };
}

/** The identity in `dataDir`, made and saved (key readable by the owner only) on first use. */
export async function loadOrCreateIdentity(dataDir: string): Promise<RelayIdentity> {
  const existing = await readIdentity(dataDir);
  if (existing) return existing;
  const id = await generateIdentity();
  // 'wx' refuses to overwrite: two relays starting on one new directory cannot swap keys under each other.
  await writeFile(join(dataDir, KEY_FILE), id.keyPem, { mode: 0o600, flag: 'wx' });
  await writeFile(join(dataDir, CERT_FILE), id.certPem, { mode: 0o644, flag: 'wx' });
  return id;
}
