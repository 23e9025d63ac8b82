/** HKDF-SHA256 (RFC 5869) and SHA-256 from node:crypto. */
import { createHash, createHmac, hkdfSync } from 'node:crypto';

const utf8 = new TextEncoder();

/** HKDF-SHA256 expanding `ikm` into `length` bytes; `info` may be a string label. */
export function hkdf(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array | string, length: number): Uint8Array {
  const infoBytes = typeof info === 'string' ? utf8.encode(info) : info;
  return new Uint8Array(hkdfSync('sha256', ikm, salt, infoBytes, length));
}

export function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest());
}

/**
 * HMAC-SHA256 (RFC 2104) of `data` under `key`; 32 bytes.
 *
 * @example
 *   const next = hmacSha256(chainKey, Uint8Array.of(0x02));
 */
export function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac('sha256', key).update(data).digest());
}

/**
 * HMAC-SHA256 of the concatenation of `parts`, fed to the MAC one part at a
 * time: a 16 KiB message is not copied to put a 32-byte prefix before it.
 *
 * @example
 *   const tag = hmacSha256Parts(macKey, [sessionBinding, body]);
 */
export function hmacSha256Parts(key: Uint8Array, parts: readonly Uint8Array[]): Uint8Array {
  const mac = createHmac('sha256', key);
  for (const part of parts) mac.update(part);
  return new Uint8Array(mac.digest());
}
