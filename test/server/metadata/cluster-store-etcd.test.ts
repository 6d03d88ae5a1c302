// The ClusterMetadataStore contract (cluster-store.contract.ts) against a real etcd: one etcd
// for the file (test/helpers/etcd-process.ts), each test under its own key prefix. What only
// etcd does (several live stores, leases, elections between brokers, orphans of a chunked
// write) is in etcd-store.test.ts.
import { after, before } from 'node:test';
import { EtcdMetadataStore } from '../../../server/metadata/etcd-store.ts';
import { initialPartitionState } from '../../../server/metadata/partition-state.ts';
import { startEtcd, type EtcdProcess } from '../../helpers/etcd-process.ts';
import { clusterStoreContract } from './cluster-store.contract.ts';

let etcd: EtcdProcess;
let prefixes = 0;

before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.stop();
});

clusterStoreContract({
  name: 'etcd store',
  async fresh() {
    const prefix = `/contract-${++prefixes}/`;
    return {
      async open() {
        const s = new EtcdMetadataStore(`etcd://${etcd.endpoints}`, { prefix, requestTimeoutMs: 5000 });
        await s.open();
        return s;
      },
      async cleanup() {},
    };
  },
  // Leaderless: the controller assigns replicas and elects a leader.
  defaultState: initialPartitionState(),
});
