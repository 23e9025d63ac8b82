/**
 * The client's connection to a relay: one pinned TLS 1.3 session with the
 * Nightjar handshake. The implementation lives in src/relay/peer-transport.ts,
 * where a forwarding relay uses it too (the relay does not import the client).
 */
export { openTransport, type RelayTransport, type TransportOptions } from '../relay/peer-transport.js';
