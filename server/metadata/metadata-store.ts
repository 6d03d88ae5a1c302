/**
 * Cluster metadata that must outlive a broker process: the cluster id and the topics with
 * their partition counts and config overrides. Brokers code against this interface only;
 * the embedded store (one process, a file in the data dir) is the default, and a store
 * backed by a coordination service implements the same contract for clusters.
 *
 * Contract: every mutation is durable when its promise resolves; createTopic is atomic and
 * fails with TOPIC_ALREADY_EXISTS when the name is taken.
 */
export interface TopicRecord {
  name: string;
  /** Unique per incarnation, so a re-created topic is never confused with a deleted one. */
  id: string;
  partitions: number;
  replicationFactor: number;
  /** Config overrides as given at creation; defaults are applied by the reader. */
  configs: Record<string, string>;
  createdAtMs: number;
}

export interface MetadataStore {
  open(): Promise<void>;
  clusterId(): string;
  listTopics(): TopicRecord[];
  getTopic(name: string): TopicRecord | undefined;
  createTopic(topic: TopicRecord): Promise<void>;
  /** Replaces a topic's record (same name and id); fails with UNKNOWN_TOPIC_OR_PARTITION. */
  updateTopic(topic: TopicRecord): Promise<void>;
  /** Resolves false when no such topic existed. */
  deleteTopic(name: string): Promise<boolean>;
  close(): Promise<void>;
}
