/**
 * Relay addresses: `nightjar://<fingerprint>@host:port`, where fingerprint is
 * the unpadded base64url SHA-256 of the relay's DER certificate. The
 * fingerprint is what a client pins; host and port only say where to dial.
 */
export const ADDRESS_SCHEME = 'nightjar:';
export const DEFAULT_PORT = 5225;
const FINGERPRINT_LENGTH = 32;

export interface RelayAddress {
  /** SHA-256 of the relay certificate (32 bytes). */
  readonly fingerprint: Uint8Array;
  readonly host: string;
  readonly port: number;
}

export class AddressError extends Error {
  override readonly name = 'AddressError';
}

export function formatAddress(a: RelayAddress): string {
  const host = a.host.includes(':') ? `[${a.host}]` : a.host;
  return `nightjar://${Buffer.from(a.fingerprint).toString('base64url')}@${host}:${a.port}`;
}

/** Parses an address; throws AddressError with the reason for anything malformed. */
export function parseAddress(text: string): RelayAddress {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    throw new AddressError(`not a relay address: ${JSON.stringify(text)}`);
  }
  if (url.protocol !== ADDRESS_SCHEME) throw new AddressError(`relay address must start with nightjar://`);
  if (url.password || url.pathname || url.search || url.hash) {
    throw new AddressError('relay address must be nightjar://<fingerprint>@host:port with nothing after the port');
  }
  let fpText: string;
  try {
    fpText = decodeURIComponent(url.username);
  } catch {
    throw new AddressError('relay address has a malformed percent escape in its fingerprint');
  }
  const fingerprint = /^[A-Za-z0-9_-]{43}$/.test(fpText) ? new Uint8Array(Buffer.from(fpText, 'base64url')) : undefined;
  if (!fingerprint || fingerprint.length !== FINGERPRINT_LENGTH) {
    throw new AddressError('relay address lacks a valid certificate fingerprint (43 base64url characters before @)');
  }
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  if (!host) throw new AddressError('relay address lacks a host');
  const port = url.port === '' ? DEFAULT_PORT : Number(url.port);
  return { fingerprint, host, port };
}
