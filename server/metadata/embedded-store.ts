/**
 * The default metadata store for a single broker: a JSON document in
 * `<data-dir>/__metadata/metadata.json`, replaced atomically (write a temp file, fsync it,
 * rename over, fsync the directory) so a crash leaves either the old or the new document.
 * Mutations are serialised through one promise chain; reads come from memory.
 */
import { randomUUID } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';
import type { MetadataStore, TopicRecord } from './metadata-store.ts';

interface Document {
  version: 1;
  clusterId: string;
  topics: TopicRecord[];
}

export class EmbeddedMetadataStore implements MetadataStore {
  private readonly dir: string;
  private readonly file: string;
  private doc: Document = { version: 1, clusterId: '', topics: [] };
  private chain: Promise<unknown> = Promise.resolve();

  constructor(dataDir: string) {
    this.dir = join(dataDir, '__metadata');
    this.file = join(this.dir, 'metadata.json');
  }

  async open(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    if (existsSync(this.file)) {
      const parsed = JSON.parse(readFileSync(this.file, 'utf8')) as Document;
      if (parsed.version !== 1 || !Array.isArray(parsed.topics)) throw new Error(`${this.file}: unknown metadata format`);
      this.doc = parsed;
    } else {
      this.doc = { version: 1, clusterId: randomUUID(), topics: [] };
      this.persist();
    }
  }

  clusterId(): string {
    return this.doc.clusterId;
  }

  listTopics(): TopicRecord[] {
    return this.doc.topics.slice();
  }

  getTopic(name: string): TopicRecord | undefined {
    return this.doc.topics.find((t) => t.name === name);
  }

  createTopic(topic: TopicRecord): Promise<void> {
    return this.serial(() => {
      if (this.getTopic(topic.name)) throw new SluiceError(ErrorCode.TOPIC_ALREADY_EXISTS, `topic ${topic.name} already exists`);
      this.doc = { ...this.doc, topics: [...this.doc.topics, topic] };
      this.persist();
    });
  }

  updateTopic(topic: TopicRecord): Promise<void> {
    return this.serial(() => {
      const i = this.doc.topics.findIndex((t) => t.name === topic.name && t.id === topic.id);
      if (i < 0) throw new SluiceError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic ${topic.name} does not exist`);
      const topics = this.doc.topics.slice();
      topics[i] = topic;
      this.doc = { ...this.doc, topics };
      this.persist();
    });
  }

  deleteTopic(name: string): Promise<boolean> {
    return this.serial(() => {
      const topics = this.doc.topics.filter((t) => t.name !== name);
      if (topics.length === this.doc.topics.length) return false;
      this.doc = { ...this.doc, topics };
      this.persist();
      return true;
    });
  }

  async close(): Promise<void> {
    await this.chain.catch(() => {});
  }

  private serial<T>(fn: () => T): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => {});
    return next;
  }

  private persist(): void {
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.doc, null, 2));
    const fd = openSync(tmp, 'r');
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, this.file);
    const dfd = openSync(this.dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  }
}
