/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`): the functions with
 * the most self time, the files they live in, and the inclusive time of the
 * bus's own functions, so a missed performance target can be traced to code.
 *
 * Usage: npx tsx bench/core/cpuprofile-top.ts <file.cpuprofile> [--top 40] [--filter src/] [--lines]
 *
 * `--lines` adds the hottest source lines (self samples). Code run through tsx
 * is transformed, so line numbers are only exact for plain .js/.mjs files (for
 * a line-level look, bundle the entry with esbuild and profile the bundle).
 */
import { readFileSync } from 'node:fs';
import { flag, option, table } from './util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
  /** Samples per source line of this node (1-based lines of the generated code). */
  positionTicks?: { line: number; ticks: number }[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const file = process.argv.slice(2).find((a) => !a.startsWith('--') && a.endsWith('.cpuprofile'));
if (!file) {
  process.stderr.write('usage: tsx bench/core/cpuprofile-top.ts <file.cpuprofile> [--top 40] [--filter src/]\n');
  process.exit(2);
}
const top = Number(option('top') ?? 40);
const filter = option('filter');
const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;

const root = process.cwd();
function shortUrl(url: string): string {
  if (!url) return '(native)';
  return url.replace(/^file:\/\//, '').replace(`${root}/`, '');
}

function keyOf(frame: CallFrame): string {
  return `${frame.functionName || '(anonymous)'} ${shortUrl(frame.url)}:${frame.lineNumber + 1}`;
}

const byId = new Map<number, ProfileNode>();
const parent = new Map<number, number>();
for (const node of profile.nodes) {
  byId.set(node.id, node);
  for (const child of node.children ?? []) parent.set(child, node.id);
}

const self = new Map<string, number>();
const selfByFile = new Map<string, number>();
const inclusive = new Map<string, number>();
let total = 0;
let idle = 0;

for (let i = 0; i < profile.samples.length; i++) {
  const delta = profile.timeDeltas[i] ?? 0;
  const node = byId.get(profile.samples[i]!)!;
  total += delta;
  const name = node.callFrame.functionName;
  if (name === '(idle)' || name === '(program)') idle += name === '(idle)' ? delta : 0;
  const key = keyOf(node.callFrame);
  self.set(key, (self.get(key) ?? 0) + delta);
  const fileKey = shortUrl(node.callFrame.url) || name;
  selfByFile.set(fileKey, (selfByFile.get(fileKey) ?? 0) + delta);
  // Inclusive time: every distinct function on this sample's stack gets the sample once.
  const seen = new Set<string>();
  for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
    const k = keyOf(byId.get(id)!.callFrame);
    if (seen.has(k)) continue;
    seen.add(k);
    inclusive.set(k, (inclusive.get(k) ?? 0) + delta);
  }
}

const pct = (us: number) => `${((us / total) * 100).toFixed(1)}%`;
const ms = (us: number) => `${(us / 1000).toFixed(0)} ms`;
const sorted = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]);
const matches = (k: string) => !filter || k.includes(filter);

const out: string[] = [];
out.push(`Profile ${file}: ${ms(total)} sampled, idle ${pct(idle)}`);
out.push('');
out.push('### Self time by function');
out.push(
  table(
    ['function location', 'self', '%'],
    sorted(self)
      .filter(([k]) => matches(k))
      .slice(0, top)
      .map(([k, v]) => [k, ms(v), pct(v)]),
  ),
);
out.push('');
out.push('### Self time by file');
out.push(
  table(
    ['file', 'self', '%'],
    sorted(selfByFile)
      .slice(0, top)
      .map(([k, v]) => [k, ms(v), pct(v)]),
  ),
);
out.push('');
if (!flag('no-inclusive')) {
  out.push(`### Inclusive time of functions in ${filter ?? 'src/ and adapters/'}`);
  out.push(
    table(
      ['function location', 'inclusive', '%'],
      sorted(inclusive)
        .filter(([k]) => (filter ? k.includes(filter) : / (src|adapters)\//.test(k)))
        .slice(0, top)
        .map(([k, v]) => [k, ms(v), pct(v)]),
    ),
  );
}
if (flag('lines')) {
  const ticksByLine = new Map<string, number>();
  let allTicks = 0;
  for (const node of profile.nodes) {
    for (const { line, ticks } of node.positionTicks ?? []) {
      allTicks += ticks;
      if (!node.callFrame.url || (filter && !shortUrl(node.callFrame.url).includes(filter))) continue;
      const k = `${shortUrl(node.callFrame.url)}:${line}`;
      ticksByLine.set(k, (ticksByLine.get(k) ?? 0) + ticks);
    }
  }
  const sources = new Map<string, string[]>();
  const lineText = (k: string): string => {
    const at = k.lastIndexOf(':');
    const path = k.slice(0, at);
    if (!sources.has(path)) {
      try {
        sources.set(path, readFileSync(path.startsWith('/') ? path : `${root}/${path}`, 'utf8').split('\n'));
      } catch {
        sources.set(path, []);
      }
    }
    const text = sources.get(path)![Number(k.slice(at + 1)) - 1] ?? '';
    return `\`${text.trim().slice(0, 90).replace(/\|/g, '\\|').replace(/`/g, "'")}\``;
  };
  out.push('');
  out.push('### Hottest lines (self samples)');
  out.push(
    table(
      ['line', 'samples', '% of samples', 'code'],
      sorted(ticksByLine)
        .slice(0, top)
        .map(([k, v]) => [k, String(v), `${((v / allTicks) * 100).toFixed(1)}%`, lineText(k)]),
    ),
  );
}
process.stdout.write(`${out.join('\n')}\n`);
