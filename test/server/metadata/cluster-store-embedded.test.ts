// The ClusterMetadataStore contract (cluster-store.contract.ts) against the embedded store,
// each test on a fresh temp data dir. What only the embedded store does (journal, group
// commit, snapshots, upgrades, full disk) is in embedded-store.test.ts and full-disk.test.ts.
import { rmSync } from 'node:fs';
import { EmbeddedMetadataStore } from '../../../server/metadata/embedded-store.ts';
import { tempDir } from '../../helpers/broker-process.ts';
import { clusterStoreContract } from './cluster-store.contract.ts';

const BROKER_ID = 0;

clusterStoreContract({
  name: 'embedded store',
  async fresh() {
    const dir = tempDir();
    return {
      async open() {
        const s = new EmbeddedMetadataStore(dir, BROKER_ID);
        await s.open();
        return s;
      },
      async cleanup() {
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
  // A cluster of one: its broker leads every partition it creates.
  defaultState: { leader: BROKER_ID, leaderEpoch: 0, replicas: [BROKER_ID], isr: [BROKER_ID], partitionEpoch: 0 },
});
