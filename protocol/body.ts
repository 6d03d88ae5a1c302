/**
 * Every request and response body has one layout:
 *
 *   controlLength uint32 | control: one MessagePack value (a map), controlLength bytes |
 *   data: raw bytes, the rest of the frame
 *
 * The control section carries the API's fields. The data section carries record batches,
 * never re-encoded: a control entry that owns records says how many bytes (`recordsBytes`)
 * and the sections follow one another in the order the entries appear in the control.
 */
import { Decoder, Encoder } from '@msgpack/msgpack';
import { ErrorCode, SluiceError } from './errors.ts';

export const CONTROL_LENGTH_BYTES = 4;
export const CONTROL_MAX_BYTES = 16 * 1024 * 1024;

const encoder = new Encoder({ ignoreUndefined: true });
// Limits keep a hostile control section from making the decoder allocate huge containers.
const decoder = new Decoder({
  maxStrLength: 1024 * 1024,
  maxBinLength: 1024 * 1024,
  maxArrayLength: 100_000,
  maxMapLength: 10_000,
  maxExtLength: 0,
});

export function encodeControl(control: unknown): Uint8Array {
  return encoder.encode(control);
}

/** Encodes controlLength + control; the data sections are written after it by the caller. */
export function encodeControlSection(control: unknown): Buffer {
  const c = encoder.encode(control);
  const out = Buffer.allocUnsafe(CONTROL_LENGTH_BYTES + c.length);
  out.writeUInt32BE(c.length, 0);
  out.set(c, CONTROL_LENGTH_BYTES);
  return out;
}

export interface DecodedBody {
  control: unknown;
  /** The data section: whatever follows the control section. */
  data: Buffer;
}

/** Splits a body; throws SluiceError(MALFORMED_REQUEST) when it cannot. */
export function decodeBody(frame: Buffer, offset: number): DecodedBody {
  if (frame.length - offset < CONTROL_LENGTH_BYTES) throw new SluiceError(ErrorCode.MALFORMED_REQUEST, 'body shorter than its control length');
  const len = frame.readUInt32BE(offset);
  const start = offset + CONTROL_LENGTH_BYTES;
  if (len > CONTROL_MAX_BYTES || start + len > frame.length) {
    throw new SluiceError(ErrorCode.MALFORMED_REQUEST, `control length ${len} overruns the ${frame.length - start} bytes left`);
  }
  let control: unknown;
  try {
    control = decoder.decode(frame.subarray(start, start + len));
  } catch (e) {
    throw new SluiceError(ErrorCode.MALFORMED_REQUEST, `control section is not valid MessagePack: ${(e as Error).message}`);
  }
  return { control, data: frame.subarray(start + len) };
}
