/**
 * The payload contract: payloads and metadata are JSON values, the form every
 * storage keeps them in (PostgreSQL `jsonb`, a broker's message body), so a
 * handler gets the same value on the first attempt in the publishing process
 * as on a retry in another process after a restart.
 *
 * Two checks enforce it. `defineEvent` refuses a schema whose output cannot be
 * JSON (`z.date()`, `z.bigint()`, `z.map()`, ...), naming the field and the
 * alternative. `publish` turns the validated value into a deep-frozen JSON
 * snapshot, refusing what no schema could rule out statically (`z.unknown()`
 * holding `NaN`, a transform returning a `Date`) and the strings PostgreSQL
 * cannot store (NUL, unpaired surrogates).
 */
import { UnsupportedSchemaError } from './errors';

/** Zod types whose output is never JSON, with what to use instead. */
const NOT_JSON: Readonly<Record<string, string>> = {
  date: 'z.iso.datetime() (an ISO 8601 string) or z.number() (epoch milliseconds)',
  bigint: 'z.string().regex(/^-?\\d+$/) or z.number().int() (exact up to 2^53)',
  map: 'z.record(keySchema, valueSchema) or z.array(z.tuple([key, value]))',
  set: 'z.array(itemSchema) (with a .refine() for uniqueness if needed)',
  symbol: 'z.string() or z.enum([...])',
  nan: 'z.number() or z.null()',
  undefined: '.optional() on the field (or drop the field)',
  void: '.optional() on the field (or drop the field)',
  function: 'data only: a payload cannot carry a function',
  promise: 'the resolved value\'s schema (await before publishing)',
  file: 'z.string() holding a URL or a storage key',
};

interface ZodInternals {
  type: string;
  [key: string]: unknown;
}

function defOf(schema: unknown): ZodInternals | undefined {
  return (schema as { _zod?: { def?: ZodInternals } } | null)?._zod?.def;
}

/**
 * How a checked schema's parsed output becomes a snapshot: `copy` when it may
 * hold the caller's own objects; else frozen in place, checking object keys
 * only when a record can bring keys the schema does not name (`freeze-keys`).
 */
type SnapshotMode = 'copy' | 'freeze' | 'freeze-keys';

/** Schemas checked so far, with how their output is snapshotted. */
const snapshotModes = new WeakMap<object, SnapshotMode>();

/** Marks, in a walk's `seen` map, that the schema has a record (keys from the data). */
const DYNAMIC_KEYS = Symbol('dynamic keys');

/**
 * Throws an {@link UnsupportedSchemaError} when `schema` can output a value
 * that is not JSON. Transforms and custom checks are not visible statically:
 * their output is checked at publish by {@link payloadSnapshotter}.
 */
export function assertJsonSafeSchema(schema: unknown): void {
  if (typeof schema === 'object' && schema !== null && !snapshotModes.has(schema)) {
    const seen = new Map<unknown, boolean | null>();
    const fresh = walkSchema(schema, 'payload', seen, false);
    snapshotModes.set(schema, !fresh ? 'copy' : seen.has(DYNAMIC_KEYS) ? 'freeze-keys' : 'freeze');
  }
}

/**
 * Walks a schema for types JSON cannot carry; returns whether its output is
 * fresh, i.e. every object and array in it is one zod's parse just made (no
 * `z.unknown()`, `z.any()`, transform, custom, catch-all or non-primitive
 * default, which may hand back the caller's or the schema's own objects).
 */
function walkSchema(schema: unknown, path: string, seen: Map<unknown, boolean | null>, inUnion: boolean): boolean {
  const def = defOf(schema);
  if (!def) return false;
  const known = seen.get(schema);
  if (known !== undefined) return known ?? true; // null: a recursive schema, decided where it started
  seen.set(schema, null);
  const fresh = walkDef(def, path, seen, inUnion);
  seen.set(schema, fresh);
  return fresh;
}

function walkDef(def: ZodInternals, path: string, seen: Map<unknown, boolean | null>, inUnion: boolean): boolean {
  const type = def.type;
  if (type in NOT_JSON && !(inUnion && (type === 'undefined' || type === 'void'))) {
    throw new UnsupportedSchemaError(path, type, NOT_JSON[type]!);
  }
  const walk = (inner: unknown, at: string, union = false) => walkSchema(inner, at, seen, union);
  switch (type) {
    case 'object': {
      const shape = def.shape as Record<string, unknown>;
      let fresh = true;
      for (const key of Object.keys(shape)) {
        if (!isStorableString(key)) throw new UnsupportedSchemaError(`${path}.${key}`, 'object', 'a key without NUL characters or unpaired surrogates');
        fresh = walk(shape[key], `${path}.${key}`) && fresh;
      }
      return (def.catchall === undefined || walk(def.catchall, `${path}[string]`)) && fresh;
    }
    case 'array':
      return walk(def.element, `${path}[]`);
    case 'tuple': {
      let fresh = true;
      (def.items as unknown[]).forEach((item, i) => (fresh = walk(item, `${path}[${i}]`) && fresh));
      return (def.rest == null || walk(def.rest, `${path}[]`)) && fresh;
    }
    case 'record':
      seen.set(DYNAMIC_KEYS, true);
      return walk(def.valueType, `${path}[string]`);
    case 'union': {
      let fresh = true;
      for (const option of def.options as unknown[]) fresh = walk(option, path, true) && fresh;
      return fresh;
    }
    case 'intersection':
      return walk(def.left, path) && walk(def.right, path);
    case 'pipe':
      // What is stored is the output: only the output side must be JSON (a codec's runtime side included).
      return walk(def.out, path);
    case 'lazy':
      return walk((def.getter as () => unknown)(), path, inUnion);
    case 'literal':
      for (const value of def.values as unknown[]) {
        if (typeof value === 'bigint') throw new UnsupportedSchemaError(path, 'literal', 'a string or number literal');
      }
      return true;
    case 'optional':
    case 'nullable':
    case 'nonoptional':
      return walk(def.innerType, path, inUnion);
    case 'readonly':
      // zod freezes its output: copied, so undefined properties can be left out.
      walk(def.innerType, path, inUnion);
      return false;
    case 'default':
    case 'prefault': {
      const inner = walk(def.innerType, path, inUnion);
      const value = def.defaultValue;
      return inner && (typeof value !== 'object' || value === null);
    }
    case 'catch':
      walk(def.innerType, path, inUnion);
      return false;
    case 'string':
    case 'number':
    case 'int':
    case 'boolean':
    case 'null':
    case 'enum':
    case 'template_literal':
    case 'never':
    case 'success':
    case 'undefined':
    case 'void':
      return true;
    default:
      // unknown, any, transform, custom, and types zod may add: JSON is checked at publish, by copying.
      return false;
  }
}

/** Why a value is not a JSON value this library can store, and where. */
export class NotJsonSafe extends Error {
  constructor(
    readonly reason: string,
    /** Path segments from the root of the checked value. */
    readonly path: (string | number)[] = [],
  ) {
    super(reason);
  }
}

/** Deeper than this is refused (and is how a cycle ends). */
const MAX_DEPTH = 256;

/** True when PostgreSQL can store `s` in `text` and `jsonb`: no NUL character, no unpaired surrogate. */
export function isStorableString(s: string): boolean {
  // isWellFormed first: it flattens a concatenated string, which makes the NUL search cheap.
  return (s as string & { isWellFormed(): boolean }).isWellFormed() && !s.includes('\u0000');
}

/** What {@link isStorableString} refuses, as a message. */
export const UNSTORABLE_STRING = 'contains a NUL character or an unpaired surrogate, which PostgreSQL cannot store';

/**
 * A deep-frozen copy of `value` as JSON would carry it: plain objects, arrays,
 * storable strings, finite numbers, booleans and `null`. Object properties
 * that are `undefined` are left out (as `JSON.stringify` does). Anything else
 * (`NaN`, `Infinity`, a `BigInt`, a `Date`, a `Map`, a class instance, a
 * function, `undefined` in an array, a cycle) throws {@link NotJsonSafe}
 * with the path to it. One pass: the copy is the snapshot that is stored,
 * so the caller's later changes to its own object change nothing.
 */
export function jsonSnapshot(value: unknown): unknown {
  return withPath(value, () => copy(value, 0));
}

/**
 * What snapshots a value payload `schema` just parsed, decided once per
 * schema (the publish path keeps one per event type). When the schema's
 * output is fresh (see `walkSchema`: nothing in it is shared with the
 * caller), the parsed value is checked and frozen in place, a fraction of the
 * cost of a copy; otherwise it is copied as {@link jsonSnapshot} does.
 */
export function payloadSnapshotter(schema: object): (value: unknown) => unknown {
  let mode = snapshotModes.get(schema);
  if (mode === undefined) {
    assertJsonSafeSchema(schema); // a definition made without defineEvent
    mode = snapshotModes.get(schema)!;
  }
  if (mode === 'copy') return jsonSnapshot;
  const checkKeys = mode === 'freeze-keys';
  return (value) => {
    try {
      return freezeInPlace(value, 0, checkKeys);
    } catch (err) {
      throw located(err, value);
    }
  };
}

/** Runs a check; on failure, walks `value` once more to say where the problem is (the fast path keeps no path). */
function withPath(value: unknown, check: () => unknown): unknown {
  try {
    return check();
  } catch (err) {
    throw located(err, value);
  }
}

/** A check's failure with the path to the problem in `value` (other errors as they are). */
function located(err: unknown, value: unknown): unknown {
  return err instanceof NotJsonSafe ? new NotJsonSafe(err.reason, locate(value, 0) ?? []) : err;
}

/** The problem a value's check refuses, when `value` itself (not something inside it) is the problem. */
function problemOf(value: unknown, depth: number): string | undefined {
  switch (typeof value) {
    case 'string':
      return isStorableString(value) ? undefined : UNSTORABLE_STRING;
    case 'number':
      return Number.isFinite(value) ? undefined : `${value} is not a JSON number`;
    case 'boolean':
      return undefined;
    case 'object': {
      if (value === null) return undefined;
      if (depth >= MAX_DEPTH) return `nested deeper than ${MAX_DEPTH} levels (or a cycle)`;
      if (Array.isArray(value)) return undefined;
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto === Object.prototype || proto === null) return undefined;
      const kind = ((value as { constructor?: { name?: string } }).constructor?.name) || 'non-plain object';
      return `a ${kind} is not a JSON value`;
    }
    case 'undefined':
      return 'undefined is not a JSON value (in an array it would become null)';
    default:
      return `a ${typeof value} is not a JSON value`;
  }
}

function fail(value: unknown, depth: number): never {
  throw new NotJsonSafe(problemOf(value, depth) ?? 'not a JSON value');
}

/** The path to the first thing the checks refuse inside `value`, or `undefined` if there is none. */
function locate(value: unknown, depth: number): (string | number)[] | undefined {
  if (problemOf(value, depth) !== undefined) return [];
  if (typeof value !== 'object' || value === null) return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const inner = locate(value[i], depth + 1);
      if (inner) return [i, ...inner];
    }
    return undefined;
  }
  for (const key in value) {
    const item = (value as Record<string, unknown>)[key];
    if (item === undefined) continue;
    if (!isStorableString(key)) return [key];
    const inner = locate(item, depth + 1);
    if (inner) return [key, ...inner];
  }
  return undefined;
}

function copy(value: unknown, depth: number): unknown {
  switch (typeof value) {
    case 'string':
      if (!isStorableString(value)) fail(value, depth);
      return value;
    case 'number':
      if (!Number.isFinite(value)) fail(value, depth);
      return value;
    case 'boolean':
      return value;
    case 'object': {
      if (value === null) return null;
      if (problemOf(value, depth) !== undefined) fail(value, depth);
      if (Array.isArray(value)) {
        const out = new Array<unknown>(value.length);
        for (let i = 0; i < value.length; i++) out[i] = copy(value[i], depth + 1);
        return Object.freeze(out);
      }
      const out: Record<string, unknown> = {};
      for (const key in value) {
        const item = (value as Record<string, unknown>)[key];
        if (item === undefined) continue;
        if (!isStorableString(key)) throw new NotJsonSafe(`a key ${UNSTORABLE_STRING}`);
        const copied = copy(item, depth + 1);
        // An own "__proto__" key (JSON.parse makes them) must stay data, not become the prototype.
        if (key === '__proto__') Object.defineProperty(out, key, { value: copied, enumerable: true, writable: true, configurable: true });
        else out[key] = copied;
      }
      return Object.freeze(out);
    }
    default:
      return fail(value, depth);
  }
}

/** The checks of {@link copy} on zod's own fresh output, frozen where it is. */
function freezeInPlace(value: unknown, depth: number, checkKeys: boolean): unknown {
  switch (typeof value) {
    case 'string':
      if (!isStorableString(value)) fail(value, depth);
      return value;
    case 'number':
      if (!Number.isFinite(value)) fail(value, depth);
      return value;
    case 'boolean':
      return value;
    case 'object': {
      if (value === null) return null;
      if (depth >= MAX_DEPTH) fail(value, depth);
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) freezeInPlace(value[i], depth + 1, checkKeys);
        return Object.freeze(value);
      }
      const object = value as Record<string, unknown>;
      for (const key in object) {
        const item = object[key];
        if (item === undefined) {
          delete object[key]; // an optional field zod kept as undefined: JSON leaves it out
          continue;
        }
        if (checkKeys && !isStorableString(key)) throw new NotJsonSafe(`a key ${UNSTORABLE_STRING}`);
        freezeInPlace(item, depth + 1, checkKeys);
      }
      return Object.freeze(object);
    }
    default:
      return fail(value, depth);
  }
}

/**
 * Deep-freezes a value in place (one read back from a storage, or metadata
 * after publish middleware), skipping subtrees that are frozen already (the
 * snapshots above are frozen all the way down).
 */
export function freezeJson<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  for (const key in value) freezeJson((value as Record<string, unknown>)[key]);
  return Object.freeze(value);
}

/**
 * The event with its payload and metadata deep-frozen in place: every handler
 * gets a read-only event on every storage (the memory storage shares one
 * frozen snapshot between deliveries; others read a fresh copy per delivery).
 */
export function freezeEventData<E extends { payload: unknown; metadata: unknown }>(event: E): E {
  if (event.payload !== frozenPayload) frozenPayload = freezeJson(event.payload);
  freezeMetadata(event.metadata);
  return event;
}

// What was frozen last is known to be frozen (frozen stays frozen): the
// storage and then each handler of an event ask about the same payload, and
// most events share one metadata (the bus's defaults). `Object.isFrozen` is a
// runtime call, asked otherwise several times per event.
let frozenPayload: unknown;
let frozenMetadata: unknown;

/** Whether a payload is frozen (so, as this module freezes, deep-frozen); remembers it if so. */
export function isFrozenPayload(payload: unknown): boolean {
  if (payload === frozenPayload) return true;
  if (!Object.isFrozen(payload)) return false;
  frozenPayload = payload;
  return true;
}

/** {@link freezeJson} for event metadata, which repeats from event to event. */
export function freezeMetadata<T>(metadata: T): T {
  if (metadata !== frozenMetadata) frozenMetadata = freezeJson(metadata);
  return metadata;
}
