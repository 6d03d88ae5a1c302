/** ApiVersions (key 0): which API keys and versions the broker speaks. Request control: {}. */
import type { Schema } from '../schema.ts';

export type ApiVersionsRequest = Record<string, never>;
export interface ApiVersionRange { apiKey: number; minVersion: number; maxVersion: number }
export interface ApiVersionsResponse { apis: ApiVersionRange[]; brokerVersion: string }

export const apiVersionsRequestSchema: Schema = { fields: {} };
export const apiVersionsResponseSchema: Schema = {
  fields: {
    apis: { array: { fields: { apiKey: 'int', minVersion: 'int', maxVersion: 'int' } } },
    brokerVersion: 'string',
  },
};
