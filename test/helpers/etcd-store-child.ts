/**
 * A broker stand-in in its own process, for tests that SIGKILL it: opens an
 * EtcdMetadataStore, registers a broker and optionally campaigns for controller, printing
 * one line per step ("registered", "elected <epoch>", "resigned") on stdout.
 * Usage: node --import tsx etcd-store-child.ts <endpoints> <prefix> <brokerId> <ttlSeconds> [campaign]
 */
import { EtcdMetadataStore } from '../../server/metadata/etcd-store.ts';

const [endpoints, prefix, brokerIdArg, ttlArg, campaign] = process.argv.slice(2);
const brokerId = Number(brokerIdArg);
const store = new EtcdMetadataStore(`etcd://${endpoints}`, { prefix });
await store.open();
await store.registerBroker({ brokerId, host: '127.0.0.1', port: 9000 + brokerId, startedAtMs: Date.now() }, Number(ttlArg));
console.log('registered');
if (campaign === 'campaign') {
  store.campaignController(brokerId, {
    onElected: (epoch) => console.log(`elected ${epoch}`),
    onResigned: () => console.log('resigned'),
  });
}
// Stay alive until killed.
setInterval(() => {}, 60_000);
