/**
 * Request and response headers, both fixed binary so that a client can route a response
 * before decoding anything else.
 *
 * Request header:  apiKey int16 | apiVersion int16 | correlationId int32 |
 *                  clientIdLength int16 (-1 = null) | clientId UTF-8
 * Response header: correlationId int32 | errorCode int16
 * A non-zero response errorCode is a request-level failure (unknown API, unsupported version,
 * malformed request, ...); its control section is then { message: string }.
 */
export const REQUEST_HEADER_MIN_BYTES = 10;
export const RESPONSE_HEADER_BYTES = 6;
export const CLIENT_ID_MAX_BYTES = 255;

export interface RequestHeader {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  clientId: string | null;
  /** Offset of the body inside the frame. */
  bodyOffset: number;
}

export interface ResponseHeader {
  correlationId: number;
  errorCode: number;
}

/** Throws RangeError when the frame is too short to hold a header. */
export function decodeRequestHeader(frame: Buffer): RequestHeader {
  if (frame.length < REQUEST_HEADER_MIN_BYTES) throw new RangeError(`request of ${frame.length} bytes is shorter than a header`);
  const apiKey = frame.readInt16BE(0);
  const apiVersion = frame.readInt16BE(2);
  const correlationId = frame.readInt32BE(4);
  const idLen = frame.readInt16BE(8);
  if (idLen < -1 || idLen > CLIENT_ID_MAX_BYTES || REQUEST_HEADER_MIN_BYTES + Math.max(idLen, 0) > frame.length) {
    throw new RangeError(`clientId length ${idLen} is invalid`);
  }
  const clientId = idLen < 0 ? null : frame.toString('utf8', 10, 10 + idLen);
  return { apiKey, apiVersion, correlationId, clientId, bodyOffset: REQUEST_HEADER_MIN_BYTES + Math.max(idLen, 0) };
}

/** Bytes of a request header; write with writeRequestHeader. */
export function requestHeaderSize(clientIdBytes: Buffer | null): number {
  return REQUEST_HEADER_MIN_BYTES + (clientIdBytes ? clientIdBytes.length : 0);
}

export function writeRequestHeader(buf: Buffer, pos: number, apiKey: number, apiVersion: number, correlationId: number, clientIdBytes: Buffer | null): number {
  if (clientIdBytes && clientIdBytes.length > CLIENT_ID_MAX_BYTES) throw new RangeError(`clientId of ${clientIdBytes.length} bytes exceeds ${CLIENT_ID_MAX_BYTES}`);
  buf.writeInt16BE(apiKey, pos);
  buf.writeInt16BE(apiVersion, pos + 2);
  buf.writeInt32BE(correlationId, pos + 4);
  if (clientIdBytes === null) {
    buf.writeInt16BE(-1, pos + 8);
    return pos + REQUEST_HEADER_MIN_BYTES;
  }
  buf.writeInt16BE(clientIdBytes.length, pos + 8);
  clientIdBytes.copy(buf, pos + REQUEST_HEADER_MIN_BYTES);
  return pos + REQUEST_HEADER_MIN_BYTES + clientIdBytes.length;
}

export function writeResponseHeader(buf: Buffer, pos: number, correlationId: number, errorCode: number): number {
  buf.writeInt32BE(correlationId, pos);
  buf.writeInt16BE(errorCode, pos + 4);
  return pos + RESPONSE_HEADER_BYTES;
}

export function decodeResponseHeader(frame: Buffer): ResponseHeader {
  if (frame.length < RESPONSE_HEADER_BYTES) throw new RangeError(`response of ${frame.length} bytes is shorter than a header`);
  return { correlationId: frame.readInt32BE(0), errorCode: frame.readInt16BE(4) };
}
