/**
 * A real S3-compatible server for tests: s3rver (npm) in this process, on 127.0.0.1, a port
 * the OS picks (or a given one, to restart on the same address), objects in a fresh temp
 * directory, one bucket created. stop() makes it unreachable (connections refused) while
 * keeping its directory, so start({ port, dir }) brings the same objects back; destroy()
 * also removes the directory. Every server started here is closed at exit.
 *
 * Credentials: s3rver accepts S3RVER/S3RVER (S3_TEST_CREDENTIALS); brokers started as
 * processes get them through AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (s3Env()).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Store, type S3StoreOptions } from '../../server/archive/s3-store.ts';

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  httpServer?: http.Server;
}
type S3rverCtor = new (opts: Record<string, unknown>) => S3rverInstance;
const S3rver = createRequire(import.meta.url)('s3rver') as S3rverCtor;

export const S3_TEST_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface S3TestServer {
  endpoint: string;
  port: number;
  bucket: string;
  dir: string;
  running: boolean;
  /** Closes the listener and every open connection; the objects stay in dir. */
  stop(): Promise<void>;
  /** Listens again on the same port with the same objects. */
  restart(): Promise<void>;
  /** stop() and remove dir. */
  destroy(): Promise<void>;
  /** An S3Store on this server (short timeouts for tests unless overridden). */
  store(opts?: Partial<S3StoreOptions>): S3Store;
  /** Environment for a broker process that uses this server. */
  env(): Record<string, string>;
  /** Broker flags for this server. */
  brokerArgs(prefix?: string): string[];
}

const live = new Set<S3TestServer>();
process.on('exit', () => {
  for (const s of live) {
    if (s.running) void s.stop();
  }
});

export async function startS3Server(opts: { bucket?: string; port?: number; dir?: string } = {}): Promise<S3TestServer> {
  const bucket = opts.bucket ?? 'sluice-test';
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'sluice-s3rver-'));
  let instance: S3rverInstance | null = null;
  let port = opts.port ?? 0;

  const listen = async (): Promise<void> => {
    const s = new S3rver({ address: '127.0.0.1', port, silent: true, directory: dir, configureBuckets: [{ name: bucket, configs: [] }] });
    const addr = await s.run();
    instance = s;
    port = addr.port;
  };
  await listen();

  const server: S3TestServer = {
    get endpoint() {
      return `http://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    bucket,
    dir,
    get running() {
      return instance !== null;
    },
    async stop() {
      const s = instance;
      if (!s) return;
      instance = null;
      s.httpServer?.closeAllConnections();
      await s.close();
    },
    async restart() {
      if (instance) return;
      await listen();
    },
    async destroy() {
      await server.stop();
      live.delete(server);
      rmSync(dir, { recursive: true, force: true });
    },
    store(o = {}) {
      return new S3Store({
        endpoint: server.endpoint,
        bucket,
        prefix: 'archive/',
        credentials: S3_TEST_CREDENTIALS,
        connectTimeoutMs: 1_000,
        requestTimeoutMs: 3_000,
        callTimeoutMs: 5_000,
        maxAttempts: 2,
        ...o,
      });
    },
    env() {
      return { AWS_ACCESS_KEY_ID: S3_TEST_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3_TEST_CREDENTIALS.secretAccessKey };
    },
    brokerArgs(prefix = 'archive/') {
      return ['--archive-s3-endpoint', server.endpoint, '--archive-s3-bucket', bucket, '--archive-s3-prefix', prefix];
    },
  };
  live.add(server);
  return server;
}
