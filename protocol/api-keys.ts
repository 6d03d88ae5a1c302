/** API keys: stable wire values. Each API has a supported version range. */
export const ApiKey = {
  API_VERSIONS: 0,
  METADATA: 1,
  CREATE_TOPICS: 2,
  DELETE_TOPICS: 3,
  DESCRIBE_TOPICS: 4,
  PRODUCE: 5,
  FETCH: 6,
  LIST_OFFSETS: 7,
  FIND_COORDINATOR: 8,
  CONSUMER_GROUP_HEARTBEAT: 9,
  OFFSET_COMMIT: 10,
  OFFSET_FETCH: 11,
  LIST_GROUPS: 12,
  DESCRIBE_GROUPS: 13,
  DELETE_GROUPS: 14,
  CREATE_PARTITIONS: 15,
  OFFSET_FOR_LEADER_EPOCH: 16,
  ALTER_PARTITION_REASSIGNMENTS: 17,
  INIT_PRODUCER_ID: 18,
  ADD_PARTITIONS_TO_TXN: 19,
  ADD_OFFSETS_TO_TXN: 20,
  END_TXN: 21,
  WRITE_TXN_MARKERS: 22,
  TXN_OFFSET_COMMIT: 23,
} as const;

export type ApiKey = (typeof ApiKey)[keyof typeof ApiKey];

export const apiNames: Record<number, string> = Object.fromEntries(
  Object.entries(ApiKey).map(([name, key]) => [key, name]),
);

/** Versions this code base speaks; the broker advertises exactly these. */
export const supportedVersions: Record<number, { min: number; max: number }> = {
  [ApiKey.API_VERSIONS]: { min: 0, max: 0 },
  [ApiKey.METADATA]: { min: 0, max: 0 },
  [ApiKey.CREATE_TOPICS]: { min: 0, max: 0 },
  [ApiKey.DELETE_TOPICS]: { min: 0, max: 0 },
  [ApiKey.DESCRIBE_TOPICS]: { min: 0, max: 0 },
  [ApiKey.PRODUCE]: { min: 0, max: 0 },
  [ApiKey.FETCH]: { min: 0, max: 0 },
  [ApiKey.LIST_OFFSETS]: { min: 0, max: 0 },
  [ApiKey.FIND_COORDINATOR]: { min: 0, max: 0 },
  [ApiKey.CONSUMER_GROUP_HEARTBEAT]: { min: 0, max: 0 },
  [ApiKey.OFFSET_COMMIT]: { min: 0, max: 0 },
  [ApiKey.OFFSET_FETCH]: { min: 0, max: 0 },
  [ApiKey.LIST_GROUPS]: { min: 0, max: 0 },
  [ApiKey.DESCRIBE_GROUPS]: { min: 0, max: 0 },
  [ApiKey.DELETE_GROUPS]: { min: 0, max: 0 },
  [ApiKey.CREATE_PARTITIONS]: { min: 0, max: 0 },
  [ApiKey.OFFSET_FOR_LEADER_EPOCH]: { min: 0, max: 0 },
  [ApiKey.ALTER_PARTITION_REASSIGNMENTS]: { min: 0, max: 0 },
  [ApiKey.INIT_PRODUCER_ID]: { min: 0, max: 0 },
  [ApiKey.ADD_PARTITIONS_TO_TXN]: { min: 0, max: 0 },
  [ApiKey.ADD_OFFSETS_TO_TXN]: { min: 0, max: 0 },
  [ApiKey.END_TXN]: { min: 0, max: 0 },
  [ApiKey.WRITE_TXN_MARKERS]: { min: 0, max: 0 },
  [ApiKey.TXN_OFFSET_COMMIT]: { min: 0, max: 0 },
};
