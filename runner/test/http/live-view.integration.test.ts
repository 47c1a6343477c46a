/**
 * The live view in a real browser: headless Chromium (Debian's `chromium` package, driven by
 * playwright-core; .ci/run installs it) opens the page of `sluice run --http` running the employee
 * pipeline with the generator, sees every node of the compiled graph, sees the counts rise, sees
 * the node that received poison input marked as failing with its error, and saves a screenshot
 * under test-output/.
 *
 * The poison arrives through a second source added to the spec for the test: a `stdin` source
 * the test writes a line that is no Debezium envelope to, once the page shows the pipeline running.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPipeline } from '../../src/plan/load-pipeline.ts';
import { launchChromium } from './browser.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const SPEC = path.join(repo, 'pipelines/employee-activity.yaml');
const OVERRIDES = ['--add', 'sources.poison={stdin: {}, format: debezium}', '--set', 'steps.inserts.from=[activities, poison]'];
const SCREENSHOT = path.join(repo, 'test-output/live-view.png');

let dir: string;
let child: ChildProcessWithoutNullStreams;
let exited: Promise<number | null>;
let url: string;
let browser: Browser;
let stderr = '';

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sluice-live-view-'));
  // Its own process group, so that the test ends sluice and nothing it started outlives it.
  child = spawn(process.execPath, [path.join(repo, 'runner/bin/sluice.js'), 'run', SPEC, '--profile', 'local', ...OVERRIDES, '--http', '127.0.0.1:0'], {
    cwd: dir,
    detached: true,
    env: { ...process.env, SLUICE_LOG_LEVEL: 'info' },
  });
  exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  child.stdout.resume();
  url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sluice did not say where it listens:\n${stderr}`)), 30_000);
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
      const found = /"url":"(http:\/\/127\.0\.0\.1:\d+\/)"/.exec(stderr);
      if (found) {
        clearTimeout(timer);
        resolve(found[1]!);
      }
    });
    child.on('exit', () => reject(new Error(`sluice exited before listening:\n${stderr}`)));
  });
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  if (child?.pid !== undefined && child.exitCode === null) {
    process.kill(-child.pid, 'SIGTERM');
    await exited;
  }
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the live view', () => {
  it('shows every node, rising counts, and the node that got poison input as failing', async () => {
    const loaded = await loadPipeline(SPEC, { profile: 'local', env: {}, sets: [{ path: 'steps.inserts.from', value: ['activities', 'poison'] }], adds: [{ path: 'sources.poison', value: { stdin: {}, format: 'debezium' } }] });
    if (!loaded.ok) throw new Error('the spec with the test overrides does not load');
    const names = loaded.plan.nodes.map((n) => n.name);
    expect(names).toContain('poison');

    const page = await browser.newPage({ viewport: { width: 1500, height: 900 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(url);
    await page.waitForSelector('#phase.good', { timeout: 20_000 });
    for (const name of names) expect(await page.locator(`g.node[data-node="${name}"]`).count(), name).toBe(1);
    // Edges of the compiled graph, ports included: one path per input of every step and sink.
    const inputs = loaded.plan.nodes.reduce((n, node) => n + (node.role === 'source' ? 0 : node.inputs.length), 0);
    expect(await page.locator('path.edge').count()).toBe(inputs);

    const count = async (name: string) => Number(await page.locator(`g.node[data-node="${name}"]`).getAttribute('data-in'));
    await page.waitForFunction(() => Number(document.querySelector('g.node[data-node="activities"]')?.getAttribute('data-in')) > 0, undefined, { timeout: 20_000 });
    const first = await count('activities');
    await page.waitForFunction((n) => Number(document.querySelector('g.node[data-node="activities"]')?.getAttribute('data-in')) > n, first, { timeout: 20_000 });
    expect(await count('activities')).toBeGreaterThan(first);
    expect(await count('processed')).toBeGreaterThan(0);
    expect(await page.locator('g.node.failing').count()).toBe(0);

    child.stdin.write('{"schema": this is no Debezium envelope\n');
    await page.waitForSelector('g.node.failing[data-node="poison"]', { timeout: 20_000 });
    expect(await page.locator('g.node.failing').count()).toBe(1);
    expect(await page.locator('g.node[data-node="poison"] .alert').textContent()).toMatch(/^failed 1/);

    await page.click('g.node[data-node="poison"]');
    await page.waitForSelector('#node-errors li time', { timeout: 10_000 });
    expect(await page.locator('#node-name').textContent()).toBe('poison');
    expect(await page.locator('#node-errors li').first().textContent()).toMatch(/poison\/|JSON|envelope/i);
    expect(await page.locator('#node-config').textContent()).toContain('debezium');

    mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(existsSync(SCREENSHOT)).toBe(true);
    expect(pageErrors).toEqual([]);
  }, 90_000);
});
