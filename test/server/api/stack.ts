/**
 * A real single-broker metadata stack for the admin API handler tests: an EmbeddedMetadataStore,
 * LogManager and TopicManager in a temp dir, and a Controller that is (or is not) elected. No
 * broker process, no sockets; the parts of BrokerContext these handlers do not touch are left out.
 */
import assert from 'node:assert/strict';
import type { BrokerContext } from '../../../server/api/context.ts';
import { Controller } from '../../../server/cluster/controller.ts';
import { defaultBrokerConfig } from '../../../server/config/broker-config.ts';
import { LogManager } from '../../../server/log/log-manager.ts';
import { EmbeddedMetadataStore } from '../../../server/metadata/embedded-store.ts';
import { NO_REPLY, type HandlerResult, type Reply } from '../../../server/network/reply.ts';
import { TopicManager } from '../../../server/partition/topic-manager.ts';
import { recordingLogger, tempDir } from '../log/helpers.ts';

export const STACK_BROKER_ID = 0;
export const PARTITIONS_MAX = 10_000;

export interface Stack {
  ctx: BrokerContext;
  store: EmbeddedMetadataStore;
  topics: TopicManager;
  controller: Controller;
  close(): Promise<void>;
}

/** elected: whether this broker becomes the controller (else every topic change is NOT_CONTROLLER). */
export async function openStack(opts: { elected?: boolean } = {}): Promise<Stack> {
  const t = tempDir();
  const log = recordingLogger();
  const store = new EmbeddedMetadataStore(t.dir, STACK_BROKER_ID);
  await store.open();
  await store.registerBroker({ brokerId: STACK_BROKER_ID, host: 'broker0.test', port: 9092, startedAtMs: 0 });
  const logs = new LogManager(t.dir, { logger: log });
  const topics = new TopicManager(store, logs, STACK_BROKER_ID, PARTITIONS_MAX, log);
  topics.load();
  const controller = new Controller(STACK_BROKER_ID, store, async () => {}, log);
  let campaign: { cancel(): Promise<void> } | null = null;
  if (opts.elected ?? true) {
    campaign = store.campaignController(STACK_BROKER_ID, controller);
    await store.settled();
  }
  const config = { ...defaultBrokerConfig(), brokerId: STACK_BROKER_ID, partitionsMax: PARTITIONS_MAX };
  const ctx = { config, topics, store, controller, log, shuttingDown: false } as unknown as BrokerContext;
  return {
    ctx,
    store,
    topics,
    controller,
    close: async () => {
      await controller.whenIdle();
      await campaign?.cancel();
      topics.stop();
      await logs.close();
      await store.close();
      t.cleanup();
    },
  };
}

/** A handler whose result is a Reply (these handlers never answer NO_REPLY), for `.control`. */
export function replying<A extends unknown[]>(h: (...args: A) => HandlerResult): (...args: A) => Reply {
  return (...args) => {
    const r = h(...args);
    assert.notEqual(r, NO_REPLY, 'the handler answers');
    return r as Reply;
  };
}

export function replyingAsync<A extends unknown[]>(h: (...args: A) => Promise<HandlerResult>): (...args: A) => Promise<Reply> {
  return async (...args) => {
    const r = await h(...args);
    assert.notEqual(r, NO_REPLY, 'the handler answers');
    return r as Reply;
  };
}
