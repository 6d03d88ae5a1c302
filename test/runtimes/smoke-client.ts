// Produces N messages over several partitions and reads them all back; prints `smoke ok N`.
// Run by runtimes.test.ts under Node, Bun and Deno against a broker on the same runtime.
import { Admin } from '../../client/admin.ts';
import { Consumer } from '../../client/consumer.ts';
import { Producer } from '../../client/producer.ts';

const [bootstrap, topic, countArg] = process.argv.slice(2);
const count = Number(countArg ?? 1000);
const partitions = 3;
const admin = new Admin({ bootstrap: bootstrap! });
await admin.createTopics([{ topic: topic!, partitions }]);
await admin.close();

const producer = new Producer({ bootstrap: bootstrap!, acks: 1 });
const acks = [];
for (let i = 0; i < count; i++) acks.push(producer.send({ topic: topic!, key: `k${i % 17}`, value: `message-${i}` }));
await Promise.all(acks);
await producer.close();

const consumer = new Consumer({ bootstrap: bootstrap!, maxWaitMs: 200 });
await consumer.assign(Array.from({ length: partitions }, (_, partition) => ({ topic: topic!, partition, offset: 'earliest' as const })));
const seen = new Set<string>();
const deadline = Date.now() + 30_000;
while (seen.size < count && Date.now() < deadline) {
  for (const m of await consumer.poll()) seen.add(Buffer.from(m.value!).toString());
}
await consumer.close();
for (let i = 0; i < count; i++) {
  if (!seen.has(`message-${i}`)) {
    console.error(`message-${i} was not read back (${seen.size} of ${count})`);
    process.exit(1);
  }
}
console.log(`smoke ok ${seen.size}`);
process.exit(0);
