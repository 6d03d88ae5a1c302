/** protocol/: the wire format shared by the broker and the clients. Depends on nothing of theirs. */
export * from './api-keys.ts';
export * from './apis/index.ts';
export * from './body.ts';
export * from './crc32c.ts';
export * from './errors.ts';
export * from './frame.ts';
export * from './header.ts';
export * from './murmur2.ts';
export * from './record-batch.ts';
export * from './schema.ts';
export * from './varint.ts';
