/**
 * The producer's delivery setting (issue 9): one word that sets acks, retries, idempotence and
 * transactions consistently, with every individual option still able to override it.
 *
 *  - 'at-most-once': acks 1, no retries, not idempotent. A record is written at most once; a
 *    lost leader or connection can lose it.
 *  - 'at-least-once' (the default): acks all, retries until deliveryTimeoutMs, idempotent
 *    (as Kafka 3). Retries never duplicate or reorder a partition's records; duplicates can
 *    still come from the consumer side (reprocessing after a crash).
 *  - 'exactly-once': at-least-once plus transactions (needs transactionalId). Sends outside an
 *    explicit transaction are wrapped in one that flush()/close() commit.
 *
 * Rules (Kafka's, KAFKA-13598): idempotence needs acks all and at most 5 requests in flight.
 * Asked for explicitly (idempotent: true, a transactionalId, or delivery 'exactly-once') with
 * acks 0/1 or maxInFlight > 5 it is a configuration error; when it is only the default, an
 * explicit acks 0/1 or maxInFlight > 5 turns it off instead.
 */
export type DeliveryGuarantee = 'at-most-once' | 'at-least-once' | 'exactly-once';

/** Requests in flight per broker an idempotent producer may have (SPEC §8.5). */
export const IDEMPOTENT_IN_FLIGHT_MAX = 5;

export interface DeliveryInput {
  delivery?: DeliveryGuarantee;
  acks?: number;
  retries?: number;
  idempotent?: boolean;
  transactionalId?: string;
  maxInFlight?: number;
  /** maxInFlight of the profile, used when maxInFlight is not given. */
  profileMaxInFlight: number;
}

export interface ResolvedDelivery {
  delivery: DeliveryGuarantee;
  acks: number;
  /** undefined: the producer's default (unbounded, deliveryTimeoutMs bounds them). */
  retries: number | undefined;
  idempotent: boolean;
  /** Asked for explicitly: a broker without InitProducerId is then an error, not a fallback. */
  idempotentExplicit: boolean;
  transactionalId: string | null;
  /** Sends outside an explicit transaction open one (exactly-once). */
  implicitTransactions: boolean;
  maxInFlight: number;
}

export class ProducerConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProducerConfigError';
  }
}

export function resolveDelivery(o: DeliveryInput): ResolvedDelivery {
  const delivery = o.delivery ?? 'at-least-once';
  if (delivery !== 'at-most-once' && delivery !== 'at-least-once' && delivery !== 'exactly-once') {
    throw new ProducerConfigError(`delivery must be 'at-most-once', 'at-least-once' or 'exactly-once', got ${JSON.stringify(delivery)}`);
  }
  const transactionalId = o.transactionalId ?? null;
  if (transactionalId !== null && (typeof transactionalId !== 'string' || transactionalId.length === 0)) {
    throw new ProducerConfigError('transactionalId must be a non-empty string');
  }
  if (delivery === 'exactly-once' && transactionalId === null) {
    throw new ProducerConfigError("delivery 'exactly-once' needs a transactionalId (unique per producer instance's role, stable across its restarts)");
  }
  const wantedExplicitly = o.idempotent === true || transactionalId !== null || delivery === 'exactly-once';
  if (o.idempotent === false && transactionalId !== null) throw new ProducerConfigError('a transactionalId needs idempotent: true (transactions are built on idempotence)');
  if (delivery === 'exactly-once' && o.idempotent === false) throw new ProducerConfigError("delivery 'exactly-once' needs idempotence; do not set idempotent: false");
  let idempotent = o.idempotent ?? delivery !== 'at-most-once';
  const acks = o.acks ?? (idempotent ? -1 : delivery === 'at-most-once' ? 1 : -1);
  const retries = o.retries ?? (delivery === 'at-most-once' ? 0 : undefined);
  let maxInFlight = o.maxInFlight ?? o.profileMaxInFlight;
  if (idempotent && acks !== -1) {
    if (wantedExplicitly) throw new ProducerConfigError(`idempotence needs acks 'all' (-1), got acks ${acks}; set acks: 'all', or idempotent: false for acks ${acks}`);
    idempotent = false;
  }
  if (idempotent && maxInFlight > IDEMPOTENT_IN_FLIGHT_MAX) {
    if (o.maxInFlight === undefined) maxInFlight = IDEMPOTENT_IN_FLIGHT_MAX;
    else if (wantedExplicitly) throw new ProducerConfigError(`idempotence allows at most ${IDEMPOTENT_IN_FLIGHT_MAX} requests in flight per broker, got maxInFlight ${maxInFlight}`);
    else idempotent = false;
  }
  return {
    delivery,
    acks,
    retries,
    idempotent,
    idempotentExplicit: wantedExplicitly,
    transactionalId,
    implicitTransactions: delivery === 'exactly-once',
    maxInFlight,
  };
}
