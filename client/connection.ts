/** The client's connection is the protocol's: brokers use the same one to talk to each other. */
export * from '../protocol/connection.ts';
