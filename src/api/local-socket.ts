/**
 * The node's local socket: how other `nightjar` commands reach the process
 * that has a profile open. A Unix socket in the profile directory (mode
 * 0600; the directory is 0700), so only the profile's owner can connect;
 * no passphrase crosses it.
 *
 * The protocol, one JSON object per line in each direction (docs/api.md):
 *
 *   node → client   {"hello":{"api":1,"pid":1234}}                  on connect
 *   client → node   {"id":1,"op":"contacts","params":{"all":false}}
 *   node → client   {"id":1,"progress":"waiting for Bob…"}          zero or more
 *   node → client   {"id":1,"result":{…}}  or  {"id":1,"error":{"code":"…","message":"…"}}
 *
 * Requests on one connection may overlap; closing the connection abandons
 * its requests (an operation that waits stops waiting; what it saved stays).
 */
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { ApiError, type ApiErrorCode } from './errors.js';

export const API_VERSION = 1;
export const SOCKET_FILE = 'node.sock';
/** Longest line either side accepts: far above any request or result, far below a memory problem. */
const MAX_LINE = 4 * 1024 * 1024;
/** Unix socket paths are limited to 108 bytes with the terminating zero. */
const MAX_SOCKET_PATH = 100;

export interface ApiRequest {
  readonly id: number;
  readonly op: string;
  readonly params: unknown;
}

export type ApiFrame =
  | { readonly hello: { readonly api: number; readonly pid: number } }
  | { readonly id: number; readonly progress: string | null }
  | { readonly id: number; readonly result: unknown }
  | { readonly id: number; readonly error: { readonly code: string; readonly message: string } };

/** Where the node of the profile in `dir` listens; a short path under the temp directory when the profile's own is too long. */
export function socketPath(dir: string): string {
  const direct = join(dir, SOCKET_FILE);
  if (Buffer.byteLength(direct) <= MAX_SOCKET_PATH) return direct;
  const digest = createHash('sha256').update(dir).digest('hex').slice(0, 24);
  return join(tmpdir(), `nightjar-${userInfo().uid}`, `${digest}.sock`);
}

/** Splits a byte stream into JSON lines; a line over MAX_LINE or not JSON ends the stream. */
function onLines(socket: Socket, handle: (value: unknown) => void): void {
  let buffered = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        socket.destroy();
        return;
      }
      handle(value);
    }
    if (buffered.length > MAX_LINE) socket.destroy();
  });
}

function send(socket: Socket, frame: ApiFrame | ApiRequest): void {
  if (!socket.destroyed) socket.write(JSON.stringify(frame) + '\n');
}

export interface OperationContext {
  /** Tells the caller what the operation waits for (null: nothing any more). */
  progress(text: string | null): void;
  /** Aborted when the caller goes away. */
  readonly signal: AbortSignal;
}

export type OperationHandler = (op: string, params: unknown, ctx: OperationContext) => Promise<unknown>;

export interface LocalServer {
  readonly path: string;
  /** Stops accepting, ends waits of requests under way and lets their work finish. */
  close(): Promise<void>;
}

/**
 * Serves `handler` on the profile's socket. The caller holds the profile
 * lock, so a socket file already there was left by a process that died.
 */
export async function serveLocalSocket(dir: string, handler: OperationHandler, describeError: (e: unknown) => ApiError | undefined): Promise<LocalServer> {
  const path = socketPath(dir);
  if (path !== join(dir, SOCKET_FILE)) mkdirSync(join(path, '..'), { recursive: true, mode: 0o700 });
  rmSync(path, { force: true });
  const running = new Set<Promise<unknown>>();
  const sockets = new Set<Socket>();
  const allAborts = new Set<AbortController>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    const aborts = new Set<AbortController>();
    socket.on('close', () => {
      sockets.delete(socket);
      for (const a of aborts) a.abort();
    });
    socket.on('error', () => undefined); // 'close' follows
    send(socket, { hello: { api: API_VERSION, pid: process.pid } });
    onLines(socket, (value) => {
      const request = value as Partial<ApiRequest> | null;
      if (!request || typeof request.id !== 'number' || typeof request.op !== 'string') {
        send(socket, { id: typeof request?.id === 'number' ? request.id : 0, error: { code: 'BAD_REQUEST', message: 'a request is {"id":N,"op":"…","params":{…}}' } });
        return;
      }
      const id = request.id;
      const abort = new AbortController();
      aborts.add(abort);
      allAborts.add(abort);
      const work = handler(request.op, request.params ?? {}, { progress: (text) => send(socket, { id, progress: text }), signal: abort.signal }).then(
        (result) => send(socket, { id, result: result ?? null }),
        (e: unknown) => {
          const known = describeError(e);
          send(socket, { id, error: known ? { code: known.code, message: known.message } : { code: 'INTERNAL', message: `unexpected error: ${(e as Error)?.stack ?? String(e)}` } });
        },
      );
      running.add(work);
      void work.finally(() => {
        running.delete(work);
        aborts.delete(abort);
        allAborts.delete(abort);
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // Created owner-only from the start: no moment at which another user could connect.
    const umask = process.umask(0o177);
    try {
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    } finally {
      process.umask(umask);
    }
  });
  chmodSync(path, 0o600);
  let closed: Promise<void> | undefined;
  return {
    path,
    close() {
      closed ??= (async () => {
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        rmSync(path, { force: true });
        for (const a of allAborts) a.abort(); // waiting stops; work in progress finishes
        await Promise.allSettled([...running]);
        for (const s of sockets) s.end();
        await stopped;
      })();
      return closed;
    },
  };
}

/** A connection to a running node. */
export class NodeConnection {
  private nextId = 1;
  private closing = false;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; progress?: (text: string | null) => void }>();

  private constructor(
    private readonly socket: Socket,
    /** The node's process. */
    readonly pid: number,
  ) {
    onLines(socket, (value) => this.onFrame(value as ApiFrame));
    socket.on('close', () => {
      const error = this.closing
        ? new ApiError('INTERRUPTED', 'the request was abandoned')
        : new ApiError('PROFILE_BUSY', 'the nightjar process holding the profile went away mid-request; run the command again');
      for (const w of this.waiting.values()) w.reject(error);
      this.waiting.clear();
    });
  }

  /**
   * Connects to the node of the profile in `dir`; resolves undefined when
   * none runs (no socket, or one left behind by a process that died).
   */
  static connect(dir: string, timeoutMs = 2000): Promise<NodeConnection | undefined> {
    return new Promise((resolve) => {
      const socket = createConnection(socketPath(dir));
      const timer = setTimeout(() => finish(undefined), timeoutMs);
      const finish = (c: NodeConnection | undefined): void => {
        clearTimeout(timer);
        socket.off('error', onError);
        if (!c) socket.destroy();
        resolve(c);
      };
      const onError = (): void => finish(undefined);
      socket.once('error', onError);
      let early = '';
      const onData = (chunk: Buffer): void => {
        early += chunk.toString('utf8');
        const nl = early.indexOf('\n');
        if (nl < 0) return;
        socket.off('data', onData);
        let hello: { hello?: { api?: unknown; pid?: unknown } };
        try {
          hello = JSON.parse(early.slice(0, nl)) as typeof hello;
        } catch {
          return finish(undefined);
        }
        if (hello.hello?.api !== API_VERSION || typeof hello.hello.pid !== 'number') return finish(undefined);
        socket.on('error', () => undefined);
        const c = new NodeConnection(socket, hello.hello.pid);
        const rest = early.slice(nl + 1);
        if (rest !== '') socket.emit('data', rest); // onLines reads strings
        finish(c);
      };
      socket.on('data', onData);
    });
  }

  private onFrame(frame: ApiFrame): void {
    if (!('id' in frame)) return;
    const w = this.waiting.get(frame.id);
    if (!w) return;
    if ('progress' in frame) return w.progress?.(frame.progress);
    this.waiting.delete(frame.id);
    if ('result' in frame) w.resolve(frame.result);
    else w.reject(new ApiError(frame.error.code as ApiErrorCode, frame.error.message));
  }

  /** Runs `op` in the node; rejects with ApiError as the node reported it. */
  call(op: string, params: unknown, progress?: (text: string | null) => void): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, ...(progress ? { progress } : {}) });
      send(this.socket, { id, op, params });
    });
  }

  /** Closes the connection; requests still waiting reject with INTERRUPTED (the node stops waiting for them). */
  close(): void {
    this.closing = true;
    this.socket.end();
  }
}
