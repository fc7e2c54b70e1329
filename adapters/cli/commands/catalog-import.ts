/**
 * `event-bus catalog import --from-classes <dir> --out <file>`: turns event
 * classes of the shape
 *
 * ```ts
 * export class MatterCreated extends BaseEvent<{ matterId: string; openedAt: Date }> {
 *   static type = 'matter.created';
 * }
 * ```
 *
 * into a catalog module with one zod schema per event type, read from the
 * payload types by the TypeScript compiler (an optional peer: only this
 * command needs it). Named interfaces and type aliases keep their names as
 * schema constants. What cannot become a JSON schema (a function, a type
 * parameter, a `bigint`, a `Map`, an invalid event name, ...) is never
 * dropped silently: it is listed with the reason, in the result and as a
 * comment at the top of the module.
 *
 * Payloads are JSON (docs/semantics.md, "Payloads are JSON"): a `Date` field
 * becomes `z.iso.datetime()`, an ISO 8601 string, as `defineEvent` would
 * refuse `z.date()` with `UNSUPPORTED_SCHEMA`; each such field is noted.
 */
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { InvalidOptionError, isValidEventName } from '@blawby/event-bus';
import { usageError } from '../cli-error';
import type { Command } from '../command';
import { ExitCode } from '../exit-codes';
import { flagOption, stringOption } from '../options';

type TS = typeof import('typescript');
type Type = import('typescript').Type;
type TypeChecker = import('typescript').TypeChecker;
type ClassDeclaration = import('typescript').ClassDeclaration;
type Node = import('typescript').Node;

/** Options of {@link importCatalogFromClasses}. */
export interface CatalogImportOptions {
  /** The folder of the event classes (read recursively; `.d.ts`, `node_modules` and `*.test.ts` skipped). */
  fromClasses: string;
  /** Where to write the catalog module; nothing is written when absent. */
  out?: string;
  /** The base class event classes extend, directly or through other classes (default `'BaseEvent'`). */
  baseClass?: string;
  /** The version of a class without `static version` (default `'1.0.0'`). */
  defaultVersion?: string;
  /** Where the module imports the library from (default `'@blawby/event-bus'`). */
  libraryImport?: string;
  /** What relative paths are resolved against (default the process's working directory). */
  cwd?: string;
  /**
   * The tsconfig.json whose compiler options (`paths`, `baseUrl`, ...) resolve
   * the classes' imports; default the nearest one above `fromClasses`, else
   * strict defaults.
   */
  tsconfig?: string;
}

/** One event class turned into a catalog entry. */
export interface ImportedEvent {
  className: string;
  eventType: string;
  version: string;
  /** The schema constant of its payload in the module. */
  schemaName: string;
  /** `file:line` of the class, relative to `fromClasses`. */
  source: string;
  /** The class's doc comment, as the event's description. */
  description?: string;
  /** What the conversion changed on purpose (a `Date` field became an ISO string, ...). */
  notes: string[];
}

/** One event class that could not be converted, and why. */
export interface UnconvertedEvent {
  className: string;
  /** The class's `static type`, when it has a readable one. */
  eventType?: string;
  source: string;
  reason: string;
}

/** What {@link importCatalogFromClasses} made. */
export interface CatalogImportResult {
  /** The catalog module's text. */
  module: string;
  events: ImportedEvent[];
  unconverted: UnconvertedEvent[];
  /** The absolute path written, when `out` was given. */
  written?: string;
}

/** Why one type could not be converted, with the path to it inside the payload. */
class Unconvertible extends Error {
  constructor(
    readonly path: string,
    readonly why: string,
  ) {
    super(path === 'payload' && why.startsWith('payload.') ? why : `${path}: ${why}`);
  }
}

/** Names the generated module defines itself. */
const RESERVED = new Set(['z', 'catalog', 'EventType', 'eventClasses', 'defineCatalog', 'defineEvent', 'eventTypes']);

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** Built-in object types a payload cannot carry, with what to use instead (as the catalog's own check says). */
const NOT_JSON_BUILTINS: Readonly<Record<string, string>> = {
  Map: 'a Map is not JSON: use Record<string, V> (z.record) or an array of [key, value] pairs',
  ReadonlyMap: 'a Map is not JSON: use Record<string, V> (z.record) or an array of [key, value] pairs',
  Set: 'a Set is not JSON: use an array',
  ReadonlySet: 'a Set is not JSON: use an array',
  Promise: 'a Promise is not JSON: publish the resolved value',
  RegExp: 'a RegExp is not JSON: use a string',
  Error: 'an Error is not JSON: use { message: string; code?: string }',
  URL: 'a URL object is not JSON: use a string',
};

/**
 * Reads the event classes under `options.fromClasses` and builds the catalog
 * module; writes it to `options.out` when given. Throws an
 * `InvalidOptionError` (`INVALID_OPTION`) when the folder does not exist or
 * the `typescript` package is not installed.
 *
 * @example
 * ```ts
 * const result = await importCatalogFromClasses({ fromClasses: 'src/events', out: 'src/events/catalog.ts' });
 * for (const u of result.unconverted) console.warn(`${u.className}: ${u.reason}`);
 * ```
 */
export async function importCatalogFromClasses(options: CatalogImportOptions): Promise<CatalogImportResult> {
  const cwd = options.cwd ?? process.cwd();
  const root = resolve(cwd, options.fromClasses);
  const info = await stat(root).catch(() => undefined);
  if (!info?.isDirectory()) throw new InvalidOptionError('fromClasses', 'is not a directory');
  const ts = await loadTypeScript();
  const files = await listSourceFiles(root);
  const program = ts.createProgram(files, compilerOptions(ts, root, cwd, options.tsconfig));
  const checker = program.getTypeChecker();
  const converter = new SchemaConverter(ts, checker, program);
  const baseClass = options.baseClass ?? 'BaseEvent';
  const events: ImportedEvent[] = [];
  const unconverted: UnconvertedEvent[] = [];
  const payloadSchemas = new Map<string, string>(); // schema name -> expression, for inline payloads
  const byType = new Map<string, string>(); // event type -> class name

  for (const file of files) {
    const sourceFile = program.getSourceFile(file);
    if (!sourceFile) continue;
    for (const node of classesOf(ts, sourceFile)) {
      const className = node.name?.text ?? '(anonymous class)';
      const { line } = sourceFile.getLineAndCharacterOfPosition(node.getStart());
      const source = `${relative(root, file).split(sep).join('/')}:${line + 1}`;
      const payload = payloadTypeOf(ts, checker, node, baseClass);
      if (!payload) continue; // not an event class
      const staticType = staticString(ts, checker, node, 'type');
      const isAbstract = node.modifiers?.some((m) => m.kind === ts.SyntaxKind.AbstractKeyword) ?? false;
      if (staticType === undefined) {
        // An abstract intermediate class is no event type of its own.
        if (!isAbstract) unconverted.push({ className, source, reason: 'no `static type = \'domain.name\'` on the class' });
        continue;
      }
      if (staticType === null) {
        unconverted.push({ className, source, reason: '`static type` is not a string literal' });
        continue;
      }
      const eventType = staticType;
      if (!isValidEventName(eventType)) {
        unconverted.push({
          className,
          eventType,
          source,
          reason: `"${eventType}" is not a valid event name ({domain}.{object}_{past_tense_verb}, e.g. "matter.created")`,
        });
        continue;
      }
      const taken = byType.get(eventType);
      if (taken) {
        unconverted.push({ className, eventType, source, reason: `"${eventType}" is also the type of ${taken}` });
        continue;
      }
      if ('error' in payload) {
        unconverted.push({ className, eventType, source, reason: payload.error });
        continue;
      }
      const version = staticString(ts, checker, node, 'version') ?? options.defaultVersion ?? '1.0.0';
      try {
        const converted = converter.payload(payload.type, `${className}Payload`);
        if (!converted.named) payloadSchemas.set(converted.name, converted.expression);
        byType.set(eventType, className);
        events.push({
          className,
          eventType,
          version,
          schemaName: converted.name,
          source,
          notes: converted.notes,
          ...docOf(ts, checker, node),
        });
      } catch (err) {
        if (!(err instanceof Unconvertible)) throw err;
        converter.discardPending();
        unconverted.push({ className, eventType, source, reason: err.message });
      }
    }
  }

  const module = renderModule({
    events,
    unconverted,
    named: converter.namedSchemas(),
    payloads: payloadSchemas,
    libraryImport: options.libraryImport ?? '@blawby/event-bus',
    fromLabel: relative(cwd, root).split(sep).join('/') || '.',
  });
  const result: CatalogImportResult = { module, events, unconverted };
  if (options.out) {
    const target = resolve(cwd, options.out);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, module);
    result.written = target;
  }
  return result;
}

async function loadTypeScript(): Promise<TS> {
  let mod: TS & { default?: TS };
  try {
    mod = (await import('typescript')) as TS & { default?: TS };
  } catch {
    throw new InvalidOptionError('fromClasses', 'reading TypeScript classes needs the typescript package: npm install --save-dev typescript');
  }
  return mod.default ?? mod;
}

/** The classes' compiler options: their tsconfig's, strict and without emit. */
function compilerOptions(ts: TS, root: string, cwd: string, tsconfig: string | undefined): import('typescript').CompilerOptions {
  const strictDefaults = {
    strict: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
  };
  const file = tsconfig !== undefined ? resolve(cwd, tsconfig) : ts.findConfigFile(root, ts.sys.fileExists);
  if (file === undefined) return { ...strictDefaults, noEmit: true, skipLibCheck: true };
  let problem: string | undefined;
  const parsed = ts.getParsedCommandLineOfConfigFile(file, {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => (problem = ts.flattenDiagnosticMessageText(d.messageText, ' ')),
  });
  if (!parsed || problem) throw new InvalidOptionError('tsconfig', `cannot read ${file}: ${problem ?? 'unknown error'}`);
  // strictNullChecks decides what is optional and nullable: keep it on whatever the project says.
  return { ...parsed.options, strictNullChecks: true, noEmit: true, skipLibCheck: true };
}

async function listSourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules' && !entry.name.startsWith('.')) out.push(...(await listSourceFiles(path)));
    } else if (/\.(?:m|c)?tsx?$/.test(entry.name) && !/\.d\.(?:m|c)?ts$/.test(entry.name) && !/\.test(?:-d)?\.tsx?$/.test(entry.name)) {
      out.push(path);
    }
  }
  return out.sort();
}

function classesOf(ts: TS, sourceFile: import('typescript').SourceFile): ClassDeclaration[] {
  const found: ClassDeclaration[] = [];
  const visit = (node: Node) => {
    if (ts.isClassDeclaration(node)) found.push(node);
    ts.forEachChild(node, visit);
  };
  visit(sourceFile);
  return found;
}

/** Where a class's payload type comes from, or why it has none. */
type PayloadSource = { type: Type } | { error: string } | undefined;

/**
 * The payload type of an event class (`undefined` when the class does not
 * extend `baseClass`). Directly (`extends BaseEvent<P>`) it is the type
 * argument as written, so a named interface keeps its name. Through other
 * classes (`extends MatterEvent<{ ... }>`) it is the type of the base
 * class's property declared with its payload type parameter (`payload: T`),
 * read on the class: the compiler has already instantiated it there.
 */
function payloadTypeOf(ts: TS, checker: TypeChecker, node: ClassDeclaration, baseClass: string): PayloadSource {
  let current: ClassDeclaration = node;
  for (let depth = 0; depth < 32; depth++) {
    const heritage = current.heritageClauses?.find((h) => h.token === ts.SyntaxKind.ExtendsKeyword)?.types[0];
    if (!heritage) return undefined;
    const local = checker.getSymbolAtLocation(heritage.expression);
    const symbol = local && local.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(local) : local;
    const declaration = symbol?.declarations?.find(ts.isClassDeclaration);
    if (!symbol || !declaration) {
      // Named like the base class but not found: an import the compiler could not resolve, never a silent skip.
      const written = heritage.expression.getText();
      const specifier = local?.declarations?.find(ts.isImportSpecifier);
      const imported = specifier ? (specifier.propertyName ?? specifier.name).getText() : undefined;
      if (written === baseClass || written.endsWith(`.${baseClass}`) || imported === baseClass) {
        return { error: `extends ${baseClass}, which the compiler could not resolve (check the import, or pass --tsconfig)` };
      }
      return undefined;
    }
    if (symbol.getName() === baseClass) {
      if (current === node) {
        const argument = heritage.typeArguments?.[0];
        return argument ? { type: checker.getTypeFromTypeNode(argument) } : { error: `extends ${baseClass} without a payload type argument` };
      }
      return inheritedPayload(ts, checker, node, declaration, baseClass);
    }
    current = declaration;
  }
  return undefined;
}

function inheritedPayload(ts: TS, checker: TypeChecker, node: ClassDeclaration, base: ClassDeclaration, baseClass: string): PayloadSource {
  const parameter = base.typeParameters?.[0]?.name.text;
  const typedByParameter = (type: import('typescript').TypeNode | undefined) =>
    type !== undefined && ts.isTypeReferenceNode(type) && ts.isIdentifier(type.typeName) && type.typeName.text === parameter;
  let property: string | undefined;
  for (const member of base.members) {
    if (ts.isPropertyDeclaration(member) && ts.isIdentifier(member.name) && typedByParameter(member.type)) property = member.name.text;
    if (ts.isConstructorDeclaration(member)) {
      for (const p of member.parameters) {
        if (p.modifiers?.length && ts.isIdentifier(p.name) && typedByParameter(p.type)) property = p.name.text;
      }
    }
  }
  const symbol = node.name ? checker.getSymbolAtLocation(node.name) : undefined;
  const prop = property && symbol ? checker.getPropertyOfType(checker.getDeclaredTypeOfSymbol(symbol), property) : undefined;
  if (!prop) {
    return { error: `extends ${baseClass} through another class, and ${baseClass} has no property typed with its payload parameter to read it from` };
  }
  return { type: checker.getTypeOfSymbol(prop) };
}

/** A static property's string value: `undefined` when absent, `null` when not a string literal. */
function staticString(ts: TS, checker: TypeChecker, node: ClassDeclaration, name: string): string | null | undefined {
  for (const member of node.members) {
    if (!ts.isPropertyDeclaration(member) || !member.name || !ts.isIdentifier(member.name) || member.name.text !== name) continue;
    if (!member.modifiers?.some((m) => m.kind === ts.SyntaxKind.StaticKeyword)) continue;
    if (!member.initializer) return member.type ? null : undefined;
    const type = checker.getTypeAtLocation(member.initializer);
    if (type.isStringLiteral()) return type.value;
    let init: Node = member.initializer;
    while (ts.isAsExpression(init) || ts.isSatisfiesExpression(init) || ts.isParenthesizedExpression(init)) init = init.expression;
    return ts.isStringLiteralLike(init) ? init.text : null;
  }
  return undefined;
}

function docOf(ts: TS, checker: TypeChecker, node: ClassDeclaration): { description?: string } {
  const symbol = node.name ? checker.getSymbolAtLocation(node.name) : undefined;
  const text = symbol ? ts.displayPartsToString(symbol.getDocumentationComment(checker)).trim() : '';
  return text ? { description: text.replace(/\s+/g, ' ') } : {};
}

/** Payload types to zod expressions; named interfaces and aliases become shared constants. */
class SchemaConverter {
  /** Named schemas in dependency order: name -> expression. */
  private readonly named = new Map<string, string>();
  /** Declared type -> its constant's name. */
  private readonly names = new Map<Type, string>();
  /** Named schemas of the event being converted (dropped when the event fails). */
  private pending: string[] = [];
  private readonly inProgress = new Set<Type>();
  /** The type node a property's union type was written as (see `inWrittenOrder`). */
  private readonly writtenAs = new Map<Type, import('typescript').TypeNode>();
  private notes: string[] = [];
  /** Fields of the current payload that failed: every one is reported, not just the first. */
  private errors: string[] = [];

  constructor(
    private readonly ts: TS,
    private readonly checker: TypeChecker,
    private readonly program: import('typescript').Program,
  ) {}

  /** Converts an event's payload; throws {@link Unconvertible}. */
  payload(type: Type, fallbackName: string): { name: string; expression: string; named: boolean; notes: string[] } {
    this.notes = [];
    this.pending = [];
    this.errors = [];
    if (!this.isObjectLike(type)) throw new Unconvertible('payload', `is ${this.describe(type)}, not an object type`);
    const named = this.nameOf(type);
    const expression = named ? this.reference(type, 'payload', named) : this.convert(type, 'payload', 1);
    if (this.errors.length) throw new Unconvertible('payload', this.errors.join('; '));
    if (named) return { name: expression, expression, named: true, notes: this.notes };
    return { name: this.uniqueName(fallbackName), expression, named: false, notes: this.notes };
  }

  /** Forgets the named schemas a failed event added. */
  discardPending(): void {
    for (const name of this.pending) {
      this.named.delete(name);
      for (const [type, n] of this.names) if (n === name) this.names.delete(type);
    }
    this.pending = [];
  }

  namedSchemas(): ReadonlyMap<string, string> {
    return this.named;
  }

  private uniqueName(wanted: string): string {
    let name = IDENTIFIER.test(wanted) ? wanted : wanted.replace(/[^A-Za-z0-9_$]/g, '_');
    const base = name;
    for (let i = 2; RESERVED.has(name) || this.named.has(name) || [...this.names.values()].includes(name); i++) name = `${base}${i}`;
    return name;
  }

  /** The declared name of an interface or type alias of the user's own files (not generic, not a library type). */
  private nameOf(type: Type): string | undefined {
    const ts = this.ts;
    const alias = type.aliasSymbol;
    if (alias) {
      if (type.aliasTypeArguments?.length || this.fromLibrary(alias)) return undefined;
      return alias.getName();
    }
    const symbol = type.getSymbol();
    if (!symbol || !(symbol.flags & ts.SymbolFlags.Interface) || this.fromLibrary(symbol)) return undefined;
    if ((type as import('typescript').InterfaceType).typeParameters?.length) return undefined;
    return symbol.getName();
  }

  private fromLibrary(symbol: import('typescript').Symbol): boolean {
    const decl = symbol.declarations?.[0];
    if (!decl) return true;
    const file = decl.getSourceFile();
    return this.program.isSourceFileDefaultLibrary(file) || file.fileName.includes('/node_modules/');
  }

  /** The constant of a named type, converting it on first use. */
  private reference(type: Type, path: string, declared: string): string {
    const known = this.names.get(type);
    if (known) return known;
    if (this.inProgress.has(type)) {
      throw new Unconvertible(path, `the recursive type ${declared} (write its schema by hand with z.lazy)`);
    }
    this.inProgress.add(type);
    try {
      const expression = this.convert(type, path, 1, true);
      const name = this.uniqueName(declared);
      this.names.set(type, name);
      this.named.set(name, expression);
      this.pending.push(name);
      return name;
    } finally {
      this.inProgress.delete(type);
    }
  }

  private isObjectLike(type: Type): boolean {
    const ts = this.ts;
    if (type.flags & ts.TypeFlags.Intersection) return (type as import('typescript').IntersectionType).types.every((t) => this.isObjectLike(t));
    return Boolean(type.flags & ts.TypeFlags.Object) && !this.checker.isArrayType(type) && !this.checker.isTupleType(type);
  }

  private describe(type: Type): string {
    return `\`${this.checker.typeToString(type)}\``;
  }

  /** A zod expression for `type`; `skipName` converts a named type's own body. */
  private convert(type: Type, path: string, depth: number, skipName = false): string {
    const ts = this.ts;
    const checker = this.checker;
    const f = type.flags;
    if (!skipName) {
      const named = this.nameOf(type);
      if (named && (f & (ts.TypeFlags.Object | ts.TypeFlags.Union | ts.TypeFlags.Intersection)) && !(f & ts.TypeFlags.Boolean)) {
        return this.reference(type, path, named);
      }
    }
    if (f & ts.TypeFlags.TypeParameter) {
      throw new Unconvertible(path, `depends on the generic type parameter ${checker.typeToString(type)}, so no single schema describes it`);
    }
    if (f & ts.TypeFlags.Any && (type as { intrinsicName?: string }).intrinsicName === 'error') {
      throw new Unconvertible(path, 'a type the compiler could not resolve (check its import, or pass --tsconfig)');
    }
    if (f & (ts.TypeFlags.Any | ts.TypeFlags.Unknown)) {
      this.notes.push(`${path}: ${checker.typeToString(type)} becomes z.unknown() (checked as JSON at publish only)`);
      return 'z.unknown()';
    }
    if (f & ts.TypeFlags.Boolean) return 'z.boolean()';
    if (f & ts.TypeFlags.BooleanLiteral) return `z.literal(${checker.typeToString(type)})`;
    if (f & ts.TypeFlags.StringLiteral) return `z.literal(${quote((type as import('typescript').StringLiteralType).value)})`;
    if (f & ts.TypeFlags.NumberLiteral) return `z.literal(${(type as import('typescript').NumberLiteralType).value})`;
    if (f & ts.TypeFlags.String) return 'z.string()';
    if (f & ts.TypeFlags.Number) return 'z.number()';
    if (f & ts.TypeFlags.Null) return 'z.null()';
    if (f & ts.TypeFlags.Never) return 'z.never()';
    if (f & (ts.TypeFlags.BigInt | ts.TypeFlags.BigIntLiteral)) {
      throw new Unconvertible(path, 'a bigint is not JSON: use a string of digits or a number (exact up to 2^53)');
    }
    if (f & ts.TypeFlags.ESSymbolLike) throw new Unconvertible(path, 'a symbol is not JSON: use a string');
    if (f & (ts.TypeFlags.Undefined | ts.TypeFlags.Void)) {
      throw new Unconvertible(path, 'undefined alone is not JSON: make the field optional or drop it');
    }
    if (f & (ts.TypeFlags.TemplateLiteral | ts.TypeFlags.StringMapping)) {
      throw new Unconvertible(path, `the template literal type ${this.describe(type)} has no exact schema: use string and a regex by hand`);
    }
    if (f & ts.TypeFlags.Union) return this.union(type as import('typescript').UnionType, path, depth);
    if (f & ts.TypeFlags.Intersection) {
      if (!this.isObjectLike(type)) throw new Unconvertible(path, `the intersection ${this.describe(type)} is not of object types`);
      return this.object(type, path, depth);
    }
    if (f & ts.TypeFlags.NonPrimitive) throw new Unconvertible(path, '`object` says nothing about its fields: give its type');
    if (f & ts.TypeFlags.Object) {
      if (checker.isTupleType(type)) {
        const items = checker.getTypeArguments(type as import('typescript').TypeReference);
        const target = (type as import('typescript').TypeReference).target as import('typescript').TupleType;
        if (target.hasRestElement || target.minLength !== items.length) {
          throw new Unconvertible(path, `the tuple ${this.describe(type)} has optional or rest elements`);
        }
        return `z.tuple([${items.map((t, i) => this.convert(t, `${path}[${i}]`, depth)).join(', ')}])`;
      }
      if (checker.isArrayType(type)) {
        const [element] = checker.getTypeArguments(type as import('typescript').TypeReference);
        if (element && element.flags & ts.TypeFlags.Union && (element as import('typescript').UnionType).types.some((t) => t.flags & ts.TypeFlags.Undefined)) {
          throw new Unconvertible(`${path}[]`, 'undefined in an array is not JSON (it would become null)');
        }
        return `z.array(${this.convert(element!, `${path}[]`, depth)})`;
      }
      const symbol = type.getSymbol();
      if (symbol && this.fromLibrary(symbol)) {
        const name = symbol.getName();
        if (name === 'Date') {
          this.notes.push(`${path}: Date becomes z.iso.datetime() (payloads are JSON: publish date.toISOString())`);
          return 'z.iso.datetime()';
        }
        const why = NOT_JSON_BUILTINS[name];
        if (why) throw new Unconvertible(path, why);
        if (name !== '__type' && name !== '__object' && name !== 'Record') {
          throw new Unconvertible(path, `the built-in type ${name} is not JSON`);
        }
      }
      if (checker.getSignaturesOfType(type, ts.SignatureKind.Call).length || checker.getSignaturesOfType(type, ts.SignatureKind.Construct).length) {
        throw new Unconvertible(path, 'a function is not JSON: a payload carries data only');
      }
      return this.object(type, path, depth);
    }
    throw new Unconvertible(path, `the type ${this.describe(type)} has no JSON schema`);
  }

  private union(type: import('typescript').UnionType, path: string, depth: number): string {
    const ts = this.ts;
    let members = this.inWrittenOrder(type).filter((t) => !(t.flags & (ts.TypeFlags.Undefined | ts.TypeFlags.Void)));
    const optional = members.length < type.types.length;
    const nullable = members.some((t) => t.flags & ts.TypeFlags.Null);
    members = members.filter((t) => !(t.flags & ts.TypeFlags.Null));
    // `boolean` is `true | false` to the checker.
    const booleans = members.filter((t) => t.flags & ts.TypeFlags.BooleanLiteral);
    let parts: string[];
    if (booleans.length === 2) {
      members = members.filter((t) => !(t.flags & ts.TypeFlags.BooleanLiteral));
      parts = ['z.boolean()'];
    } else parts = [];
    let inner: string;
    if (members.length > 0 && parts.length === 0 && members.every((t) => t.flags & ts.TypeFlags.StringLiteral)) {
      inner = `z.enum([${members.map((t) => quote((t as import('typescript').StringLiteralType).value)).join(', ')}])`;
    } else {
      parts.push(...members.map((t) => this.convert(t, path, depth)));
      if (parts.length === 0) inner = nullable ? 'z.null()' : 'z.never()';
      else inner = parts.length === 1 ? parts[0]! : `z.union([${parts.join(', ')}])`;
    }
    if (nullable && parts.length + members.length > 0) inner += '.nullable()';
    return optional ? `${inner}.optional()` : inner;
  }

  /**
   * A union's members in the order the source writes them (the checker
   * orders them by creation): `'open' | 'pending' | 'closed'` stays so.
   */
  private inWrittenOrder(type: import('typescript').UnionType): Type[] {
    const ts = this.ts;
    const unwrap = (n: import('typescript').TypeNode | undefined) => {
      while (n && ts.isParenthesizedTypeNode(n)) n = n.type;
      return n && ts.isUnionTypeNode(n) ? n : undefined;
    };
    const node = unwrap(this.writtenAs.get(type)) ?? unwrap(type.aliasSymbol?.declarations?.find(ts.isTypeAliasDeclaration)?.type);
    if (!node) return [...type.types];
    const written = node.types.map((n) => this.checker.getTypeFromTypeNode(n));
    const rank = (t: Type) => {
      const i = written.indexOf(t);
      return i === -1 ? written.length : i;
    };
    return [...type.types].sort((a, b) => rank(a) - rank(b));
  }

  private object(type: Type, path: string, depth: number): string {
    const ts = this.ts;
    const checker = this.checker;
    const indent = '  '.repeat(depth);
    const fields: string[] = [];
    for (const prop of checker.getPropertiesOfType(type)) {
      const key = prop.getName();
      const at = `${path}.${key}`;
      const decl = prop.valueDeclaration ?? prop.declarations?.[0];
      if (decl && (ts.isMethodSignature(decl) || ts.isMethodDeclaration(decl))) {
        this.errors.push(`${at}: a method is not JSON: a payload carries data only`);
        continue;
      }
      let propType = checker.getTypeOfSymbol(prop);
      const optional = Boolean(prop.flags & ts.SymbolFlags.Optional);
      if (optional) propType = this.declaredOrStripped(propType, decl);
      const typeNode = decl && (ts.isPropertySignature(decl) || ts.isPropertyDeclaration(decl)) ? decl.type : undefined;
      if (typeNode && propType.flags & ts.TypeFlags.Union) this.writtenAs.set(propType, typeNode);
      let expression: string;
      try {
        expression = this.convert(propType, at, depth + 1);
      } catch (err) {
        if (!(err instanceof Unconvertible)) throw err;
        this.errors.push(err.message);
        continue;
      }
      if (optional && !expression.endsWith('.optional()')) expression += '.optional()';
      const doc = ts.displayPartsToString(prop.getDocumentationComment(checker)).trim();
      if (doc) expression += `.describe(${quote(doc.replace(/\s+/g, ' '))})`;
      fields.push(`${indent}${IDENTIFIER.test(key) ? key : quote(key)}: ${expression},`);
    }
    const indexes = checker.getIndexInfosOfType(type);
    let values: string | undefined;
    for (const index of indexes) {
      if (!(index.keyType.flags & ts.TypeFlags.String)) {
        throw new Unconvertible(`${path}[key]`, `a ${checker.typeToString(index.keyType)} index signature: JSON keys are strings`);
      }
      values = this.convert(index.type, `${path}[string]`, depth + 1);
    }
    if (values !== undefined && fields.length === 0) return `z.record(z.string(), ${values})`;
    const body = fields.length ? `z.object({\n${fields.join('\n')}\n${'  '.repeat(depth - 1)}})` : 'z.object({})';
    return values !== undefined ? `${body}.catchall(${values})` : body;
  }

  /**
   * An optional property's type without the `undefined` strict mode adds,
   * keeping the declared alias (`status?: MatterStatus` stays `MatterStatus`)
   * when the declaration says the same.
   */
  private declaredOrStripped(type: Type, decl: Node | undefined): Type {
    const ts = this.ts;
    if (!(type.flags & ts.TypeFlags.Union)) return type;
    const rest = (type as import('typescript').UnionType).types.filter((t) => !(t.flags & ts.TypeFlags.Undefined));
    const typeNode = decl && (ts.isPropertySignature(decl) || ts.isPropertyDeclaration(decl)) ? decl.type : undefined;
    if (typeNode) {
      const declared = this.checker.getTypeFromTypeNode(typeNode);
      const parts = declared.flags & ts.TypeFlags.Union ? (declared as import('typescript').UnionType).types : [declared];
      if (parts.length === rest.length && parts.every((t) => rest.includes(t))) return declared;
    }
    return rest.length === 1 ? rest[0]! : this.checker.getNonNullableType(type);
  }
}

interface RenderInput {
  events: ImportedEvent[];
  unconverted: UnconvertedEvent[];
  named: ReadonlyMap<string, string>;
  payloads: ReadonlyMap<string, string>;
  libraryImport: string;
  fromLabel: string;
}

/** A single-quoted TypeScript string literal. */
function quote(text: string): string {
  return `'${JSON.stringify(text).slice(1, -1).replace(/\\"/g, '"').replace(/'/g, "\\'")}'`;
}

function renderModule(input: RenderInput): string {
  const lines: string[] = [
    `// Generated by \`event-bus catalog import --from-classes ${input.fromLabel}\` from the payload types of the`,
    '// event classes. Run it again after changing them, or take this file over and edit it by hand.',
    '// Date fields are ISO 8601 strings (z.iso.datetime()): payloads are JSON.',
  ];
  if (input.unconverted.length) {
    lines.push('//', `// Not converted (${input.unconverted.length}): add these by hand.`);
    for (const u of input.unconverted) {
      lines.push(`//   ${u.className}${u.eventType ? ` ("${u.eventType}")` : ''}, ${u.source}: ${u.reason.replace(/\n/g, ' ')}`);
    }
  }
  lines.push("import { z } from 'zod';", `import { defineCatalog, defineEvent, eventTypes } from '${input.libraryImport}';`, '');
  for (const [name, expression] of input.named) {
    lines.push(`export const ${name} = ${expression};`, `export type ${name} = z.infer<typeof ${name}>;`, '');
  }
  for (const event of input.events) {
    const expression = input.payloads.get(event.schemaName);
    if (expression === undefined) continue;
    lines.push(`/** Payload of ${event.className} (${event.source}). */`, `export const ${event.schemaName} = ${expression};`, '');
  }
  lines.push('export const catalog = defineCatalog({');
  for (const event of input.events) {
    const description = event.description;
    lines.push(
      `  ${quote(event.eventType)}: defineEvent({`,
      `    version: ${quote(event.version)},`,
      ...(description ? [`    description: ${quote(description)},`] : []),
      `    payload: ${event.schemaName},`,
      '  }),',
    );
  }
  lines.push('});', '', '/** The event type of each class, by class name. */', 'export const eventClasses = {');
  const classNames = new Set<string>();
  for (const event of input.events) {
    // Two classes of one name (in two files): the first keeps it; the type is in the catalog either way.
    if (classNames.has(event.className)) continue;
    classNames.add(event.className);
    lines.push(`  ${event.className}: ${quote(event.eventType)},`);
  }
  lines.push('} as const;', '', 'export const EventType = eventTypes(catalog);', '');
  return lines.join('\n');
}

/** The report `catalog import` prints on stderr: what was converted, what was noted, what was not. */
export function formatCatalogImportReport(result: CatalogImportResult): string {
  const lines = [
    `${result.events.length} event type${result.events.length === 1 ? '' : 's'} converted` +
      (result.written ? ` into ${result.written}` : '') +
      (result.unconverted.length ? `; ${result.unconverted.length} not converted` : ''),
  ];
  const noted = result.events.filter((e) => e.notes.length);
  if (noted.length) {
    lines.push('Notes:');
    for (const e of noted) for (const note of e.notes) lines.push(`  ${e.eventType} (${e.className}): ${note}`);
  }
  if (result.unconverted.length) {
    lines.push('Not converted (add them by hand):');
    for (const u of result.unconverted) {
      lines.push(`  ${u.className}${u.eventType ? ` ("${u.eventType}")` : ''} at ${u.source}: ${u.reason}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** The `catalog import` command. */
export const catalogImport: Command = {
  path: ['catalog', 'import'],
  summary: 'Write a zod catalog module from TypeScript event classes (class X extends BaseEvent<payload>).',
  description:
    'Reads every .ts file under --from-classes with the TypeScript compiler (install typescript), and makes one catalog ' +
    "entry per class that extends the base class and has a `static type = 'domain.name'`. Named interfaces and type " +
    'aliases become schema constants of the same name; a Date field becomes z.iso.datetime() (payloads are JSON). ' +
    'Classes it cannot convert (a function, a generic type parameter, a bigint, a Map, an invalid event name) are listed ' +
    'on stderr with the reason and at the top of the module. Without --out the module goes to stdout.',
  options: {
    'from-classes': { type: 'string', value: '<dir>', description: 'Folder of the event classes (required; read recursively).' },
    out: { type: 'string', short: 'o', value: '<file>', description: 'Catalog module to write. Default: stdout.' },
    'base-class': { type: 'string', value: '<name>', description: "Base class of the event classes (default 'BaseEvent')." },
    'default-version': { type: 'string', value: '<version>', description: "Version of a class without static version (default '1.0.0')." },
    tsconfig: { type: 'string', value: '<file>', description: 'tsconfig.json that resolves the imports (default: the nearest one).' },
    strict: { type: 'boolean', description: 'Exit with 1 when a class could not be converted.' },
  },
  examples: [
    'event-bus catalog import --from-classes src/events --out src/events/catalog.ts',
    'event-bus catalog import --from-classes src/events --base-class DomainEvent --strict > catalog.ts',
  ],
  async run(ctx) {
    const from = stringOption(ctx, 'from-classes');
    if (from === undefined) throw usageError('--from-classes is required', 'event-bus catalog import --from-classes <dir> --out <file>');
    const out = stringOption(ctx, 'out');
    const baseClass = stringOption(ctx, 'base-class');
    const defaultVersion = stringOption(ctx, 'default-version');
    const tsconfig = stringOption(ctx, 'tsconfig');
    const result = await importCatalogFromClasses({
      fromClasses: from,
      cwd: ctx.io.cwd,
      ...(out !== undefined ? { out } : {}),
      ...(baseClass !== undefined ? { baseClass } : {}),
      ...(defaultVersion !== undefined ? { defaultVersion } : {}),
      ...(tsconfig !== undefined ? { tsconfig } : {}),
    });
    if (!result.written) ctx.io.stdout.write(result.module);
    ctx.io.stderr.write(formatCatalogImportReport(result));
    return flagOption(ctx, 'strict') && result.unconverted.length ? ExitCode.FAILURE : ExitCode.OK;
  },
};
