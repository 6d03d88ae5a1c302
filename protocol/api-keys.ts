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
};
