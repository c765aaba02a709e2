/** Parses the Prometheus text exposition format, enough for tests (no PromQL). */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  samples: Sample[];
  /** `# TYPE` per metric family. */
  types: Map<string, string>;
  /** Samples of `name` whose labels include every entry of `match`. */
  find(name: string, match?: Record<string, string>): Sample[];
  /** The single value of `name` with exactly these label values for the given keys (0 when absent). */
  value(name: string, match?: Record<string, string>): number;
}

export function parseExposition(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      types.set(name, type);
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    if (m[2]) for (const lm of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]] = lm[2];
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  const find = (name: string, match: Record<string, string> = {}): Sample[] => samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
  return {
    samples,
    types,
    find,
    value(name, match = {}) {
      const found = find(name, match);
      if (found.length > 1) throw new Error(`${found.length} series of ${name} match ${JSON.stringify(match)}`);
      return found[0]?.value ?? 0;
    },
  };
}
