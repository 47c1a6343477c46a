import { spawnSync } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../../../..');

describe('stdin source', () => {
  it('reads piped lines until end of input, then resolves (bounded)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-stdin-'));
    const script = path.join(dir, 'run-stdin.mts');
    await writeFile(
      script,
      `import { stdinSource } from ${JSON.stringify(path.join(root, 'runner/src/components/sources/stdin.ts'))};
import { ManualClock } from ${JSON.stringify(path.join(root, 'runner/src/engine/clock.ts'))};
import { silentLogger } from ${JSON.stringify(path.join(root, 'runner/src/engine/logger.ts'))};
import { Metrics } from ${JSON.stringify(path.join(root, 'runner/src/engine/metrics.ts'))};
const source = stdinSource.create({ batch_size: 2 }, { name: 'in', logger: silentLogger, clock: new ManualClock(7), metrics: new Metrics(), mode: 'test' });
const seen = [];
await source.run({
  async emit(batch) { seen.push(batch.partition + ' ' + batch.messages.map((m) => m.position.offset + '=' + m.value).join(',')); },
  assign(p) { seen.push('assign ' + p.join(',')); },
  revoke() {},
});
process.stdout.write(JSON.stringify({ bounded: source.bounded, seen }));
`,
    );
    const result = spawnSync(path.join(root, 'node_modules/.bin/tsx'), [script], { input: 'a\nb\n\nc', cwd: root, encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toEqual({ bounded: true, seen: ['assign in/stdin', 'in/stdin 1=a,2=b', 'in/stdin 4=c'] });
  });
});
