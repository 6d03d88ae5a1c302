/**
 * Kept so that `import ... from './config.ts'` still works: the broker's settings now live in
 * one table, server/config/broker-config.ts.
 */
export { DEFAULT_PORT, defaultBrokerConfig, type BrokerConfig } from './config/broker-config.ts';
