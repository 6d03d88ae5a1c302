/**
 * AlterTopicConfigs (key 29): sets and removes topic config overrides (SPEC §6.30) on live
 * topics. Incremental: keys in `set` get the value, keys in `delete` go back to their default,
 * every other override stays. Sent to the controller, as CreateTopics.
 */
import type { Schema } from '../schema.ts';

export interface AlterTopicConfigsRequest { topics: Array<{ topic: string; set: Record<string, string>; delete: string[] }>; validateOnly: boolean }
export interface AlterTopicConfigsResponse { topics: Array<{ topic: string; errorCode: number; errorMessage: string | null }> }

export const alterTopicConfigsRequestSchema: Schema = {
  fields: { topics: { array: { fields: { topic: 'string', set: 'stringMap', delete: { array: 'string' } } } }, validateOnly: 'bool' },
};
export const alterTopicConfigsResponseSchema: Schema = {
  fields: { topics: { array: { fields: { topic: 'string', errorCode: 'int', errorMessage: 'string?' } } } },
};
