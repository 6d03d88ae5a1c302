/**
 * Shapes of control sections, checked on decode so that handlers on either side only ever
 * see well-typed values. A mismatch throws SluiceError(MALFORMED_REQUEST) naming the path.
 * Integers must be safe integers; unknown map keys are ignored (newer peers may add fields).
 */
import { ErrorCode, SluiceError } from './errors.ts';

export type Schema =
  | 'int'
  | 'int?'
  | 'string'
  | 'string?'
  | 'bool'
  | 'stringMap'
  | { array: Schema; nullable?: boolean }
  | { fields: Record<string, Schema>; optional?: readonly string[] };

function bad(path: string, want: string, got: unknown): never {
  const shown = got === null ? 'null' : Array.isArray(got) ? 'array' : typeof got;
  throw new SluiceError(ErrorCode.MALFORMED_REQUEST, `${path || 'control'}: expected ${want}, got ${shown}`);
}

export function check<T>(schema: Schema, v: unknown, path = ''): T {
  switch (schema) {
    case 'int':
      if (typeof v !== 'number' || !Number.isSafeInteger(v)) bad(path, 'integer', v);
      return v as T;
    case 'int?':
      if (v === null || v === undefined) return null as T;
      return check<T>('int', v, path);
    case 'string':
      if (typeof v !== 'string') bad(path, 'string', v);
      return v as T;
    case 'string?':
      if (v === null || v === undefined) return null as T;
      return check<T>('string', v, path);
    case 'bool':
      if (typeof v !== 'boolean') bad(path, 'boolean', v);
      return v as T;
    case 'stringMap': {
      if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) bad(path, 'map of strings', v);
      for (const [k, x] of Object.entries(v as object)) if (typeof x !== 'string') bad(`${path}.${k}`, 'string', x);
      return v as T;
    }
  }
  if ('array' in schema) {
    if ((v === null || v === undefined) && schema.nullable) return null as T;
    if (!Array.isArray(v)) bad(path, 'array', v);
    const arr = v as unknown[];
    for (let i = 0; i < arr.length; i++) check(schema.array, arr[i], `${path}[${i}]`);
    return v as T;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) bad(path, 'map', v);
  const obj = v as Record<string, unknown>;
  for (const [k, s] of Object.entries(schema.fields)) {
    if (!Object.hasOwn(obj, k) || obj[k] === undefined) {
      if (schema.optional?.includes(k)) continue;
      bad(`${path}.${k}`, 'a value', undefined);
    }
    check(s, obj[k], `${path}.${k}`);
  }
  return v as T;
}
