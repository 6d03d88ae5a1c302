// The ArchiveStore contract (archive-store.contract.ts) against LocalDirStore on a temp dir.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalDirStore } from '../../../server/archive/local-dir-store.ts';
import { archiveStoreContract } from './archive-store.contract.ts';

archiveStoreContract({
  name: 'local directory',
  async fresh() {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-archive-'));
    return { store: new LocalDirStore(dir), cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
  },
});
