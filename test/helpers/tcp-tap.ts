/**
 * A loopback TCP forwarder that records every byte in each direction, for
 * tests that inspect what an observer on the wire would see.
 */
import { createServer, connect, type AddressInfo, type Server } from 'node:net';

export interface TappedConnection {
  readonly toServer: Buffer[];
  readonly toClient: Buffer[];
}

export interface TcpTap {
  readonly port: number;
  readonly connections: TappedConnection[];
  close(): Promise<void>;
}

export async function startTcpTap(targetHost: string, targetPort: number): Promise<TcpTap> {
  const connections: TappedConnection[] = [];
  const sockets = new Set<import('node:net').Socket>();
  const server: Server = createServer((client) => {
    const record: TappedConnection = { toServer: [], toClient: [] };
    connections.push(record);
    const upstream = connect(targetPort, targetHost);
    sockets.add(client).add(upstream);
    client.on('data', (d) => {
      record.toServer.push(Buffer.from(d));
      upstream.write(d);
    });
    upstream.on('data', (d) => {
      record.toClient.push(Buffer.from(d));
      client.write(d);
    });
    const end = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    connections,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface TlsRecord {
  readonly type: number;
  readonly length: number;
}

/** Splits a captured TLS byte stream into record headers (type, payload length). */
export function tlsRecords(stream: Buffer): TlsRecord[] {
  const out: TlsRecord[] = [];
  let at = 0;
  while (at + 5 <= stream.length) {
    const length = stream.readUInt16BE(at + 3);
    out.push({ type: stream[at]!, length });
    at += 5 + length;
  }
  if (at !== stream.length) throw new Error(`capture ends inside a TLS record (${stream.length - at} bytes left)`);
  return out;
}
