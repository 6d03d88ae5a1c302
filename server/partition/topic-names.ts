/** Topic names (SPEC §7.1): what a name may be, and which names belong to the broker (§7.4). */
import { ErrorCode, SluiceError } from '../../protocol/errors.ts';

export const TOPIC_NAME_MAX_CHARS = 249;
const TOPIC_NAME = /^[a-zA-Z0-9._-]+$/;
/** Names starting with this belong to the broker (e.g. __consumer_offsets). */
export const INTERNAL_TOPIC_PREFIX = '__';

export function validateTopicName(name: string): void {
  if (name.length === 0 || name.length > TOPIC_NAME_MAX_CHARS || !TOPIC_NAME.test(name) || name === '.' || name === '..') {
    throw new SluiceError(ErrorCode.INVALID_TOPIC, `topic name ${JSON.stringify(name)} must be 1-${TOPIC_NAME_MAX_CHARS} characters of [a-zA-Z0-9._-], not "." or ".."`);
  }
}

export function isInternalTopic(name: string): boolean {
  return name.startsWith(INTERNAL_TOPIC_PREFIX);
}
