/** What request handlers may touch: the broker's parts, passed explicitly. */
import type { BrokerConfig } from '../config/broker-config.ts';
import type { DelayedFetches } from '../partition/delayed-fetches.ts';
import type { GroupCoordinator } from '../group/group-coordinator.ts';
import type { Logger } from '../logger.ts';
import type { ReplicaManager } from '../cluster/replica-manager.ts';
import type { Controller } from '../cluster/controller.ts';
import type { ClusterMetadataStore } from '../metadata/cluster-store.ts';
import type { TopicManager } from '../partition/topic-manager.ts';
import type { ProducerIdManager } from '../txn/producer-id-manager.ts';
import type { TransactionCoordinator } from '../txn/transaction-coordinator.ts';
import type { TopicTraffic } from '../observability/topic-traffic.ts';
import type { BrokerArchive } from '../archive/broker-archive.ts';
import type { Authorizer } from '../security/authorizer.ts';

export interface BrokerContext {
  config: BrokerConfig;
  topics: TopicManager;
  store: ClusterMetadataStore;
  replicas: ReplicaManager;
  controller: Controller;
  delayedFetches: DelayedFetches;
  groups: GroupCoordinator;
  /** Producer ids for InitProducerId (SPEC §6.19). */
  producerIds: ProducerIdManager;
  /** The transaction coordinator (SPEC §6.19-6.22, §7.6). */
  txn: TransactionCoordinator;
  log: Logger;
  /** Per-topic bytes and messages in and out (metrics); absent with the metrics endpoint off. */
  traffic?: TopicTraffic;
  /** ACL checks (SPEC §2.7); absent or null when the broker does not require authentication. */
  authorizer?: Authorizer | null;
  /** Set once shutdown starts: new produce requests are refused with BROKER_SHUTTING_DOWN. */
  shuttingDown: boolean;
  /** Tiered storage (SPEC §7.10): the broker's archive; null/absent without an archive store. */
  archive?: BrokerArchive | null;
}
