// The ArchiveStore contract (archive-store.contract.ts) against S3Store on a real s3rver
// (test/helpers/s3-server.ts) started for each test on 127.0.0.1, port 0. Unreachable =
// the server stopped (connections refused): every call must fail retryable, in bounded time.
import { after } from 'node:test';
import type { ArchiveStore } from '../../../server/archive/archive-store.ts';
import { startS3Server, type S3TestServer } from '../../helpers/s3-server.ts';
import { archiveStoreContract } from './archive-store.contract.ts';

const servers = new Map<ArchiveStore, S3TestServer>();
after(async () => {
  for (const s of servers.values()) await s.destroy();
});

archiveStoreContract({
  name: 's3 (s3rver)',
  async fresh() {
    const server = await startS3Server();
    const store = server.store({ listPageKeys: 100 });
    servers.set(store, server);
    return {
      store,
      cleanup: async () => {
        servers.delete(store);
        await server.destroy();
      },
    };
  },
  async makeUnreachable(store) {
    const server = servers.get(store)!;
    await server.stop();
    return () => server.restart();
  },
  // s3rver writes a PUT in place (see ArchiveStoreTarget.writesAtomically).
  writesAtomically: false,
  // 2 attempts, 1 s connect timeout, SDK backoff: well under this.
  unreachableBoundMs: 8_000,
});
