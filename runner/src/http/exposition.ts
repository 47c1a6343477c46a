/**
 * Prometheus text expositions of several registries as one: what `/metrics` serves for
 * `sluice run --threads N`, whose threads each keep a registry of their own (their series told
 * apart by a `thread` label, as Kafka Streams tags its thread metrics with the thread's id).
 */

interface Family {
  /** The `# HELP` and `# TYPE` lines, from the first text that has the family. */
  head: string[];
  /** Which text the head lines come from. */
  headFrom: number;
  samples: string[];
}

/**
 * One exposition holding every family of `texts` once: its `# HELP` and `# TYPE` lines (from the
 * first text that has it), then the samples of each text in the order given; families in the order
 * first seen. A sample belongs to the family whose comment lines came before it (histograms'
 * `_bucket`, `_sum` and `_count` series included). Samples are neither summed nor deduplicated:
 * the texts are expected to label their series apart.
 */
export function mergeExpositions(texts: readonly string[]): string {
  const families = new Map<string, Family>();
  texts.forEach((text, index) => {
    let current: Family | undefined;
    for (const line of text.split('\n')) {
      if (line === '') continue;
      const comment = /^# (?:HELP|TYPE) (\S+)/.exec(line);
      if (comment) {
        const name = comment[1]!;
        let family = families.get(name);
        if (!family) families.set(name, (family = { head: [], headFrom: index, samples: [] }));
        if (family.headFrom === index) family.head.push(line);
        current = family;
      } else if (!line.startsWith('#') && current) {
        current.samples.push(line);
      }
    }
  });
  const lines: string[] = [];
  for (const f of families.values()) lines.push(...f.head, ...f.samples);
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}
