import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { StateError, type Checkpoint } from '../../../src/engine/checkpoint/checkpoint.ts';
import type { JsonValue } from '../../../src/engine/component.ts';
import { CHECKPOINT_FILE, FileStateStore } from '../../../src/engine/state/file-store.ts';

async function freshStore(): Promise<{ store: FileStateStore; dir: string; file: string }> {
  const dir = path.join(await mkdtemp(path.join(tmpdir(), 'sluice-state-')), 'nested', 'app');
  const store = new FileStateStore(dir);
  await store.open();
  return { store, dir, file: path.join(dir, CHECKPOINT_FILE) };
}

function checkpoint(epoch: number, panes: number): Checkpoint {
  const entries = new Map<string, JsonValue>();
  for (let i = 0; i < panes; i++) entries.set(`0|3600000|[${i}]`, { count: i, note: 'päne ✓' });
  return {
    applicationId: 'app',
    epoch,
    positions: { 'src/t/0': String(epoch * 100), 'src/t/1': '9007199254740993' },
    states: new Map([['hourly', { header: { version: 1, seq: epoch }, entries }]]),
    identities: { hourly: { kind: 'window', fingerprint: 'f1', parts: { size: '1h' } } },
    sinks: { out: { length: epoch * 10 } },
    takenAt: 1_000 + epoch,
  };
}

async function refusal(store: FileStateStore): Promise<StateError> {
  try {
    await store.load();
  } catch (err) {
    expect(err).toBeInstanceOf(StateError);
    return err as StateError;
  }
  throw new Error('load accepted the file');
}

describe('FileStateStore', () => {
  it('loads undefined when nothing was ever committed, and open creates the directory', async () => {
    const { store, dir } = await freshStore();
    expect(await readdir(dir)).toEqual([]);
    expect(await store.load()).toBeUndefined();
    expect(store.description).toBe(`file ${path.join(dir, CHECKPOINT_FILE)}`);
  });

  it('loads what it committed, Maps and exact positions included', async () => {
    const { store } = await freshStore();
    const cp = checkpoint(1, 3);
    const figures = await store.commit(cp);
    expect(figures.written).toBe(3);
    expect(figures.bytes).toBeGreaterThan(0);
    expect(await store.load()).toEqual(cp);
    // A second store over the same directory (a restarted process) reads the same.
    expect(await new FileStateStore(store.dir).load()).toEqual(cp);
  });

  it('a second commit replaces the first and leaves no .tmp behind', async () => {
    const { store, dir } = await freshStore();
    await store.commit(checkpoint(1, 3));
    const second = checkpoint(2, 1);
    await store.commit(second);
    expect(await store.load()).toEqual(second);
    expect((await readdir(dir)).sort()).toEqual([CHECKPOINT_FILE]);
  });

  describe('refuses a file it cannot trust, with E_STATE_CORRUPT and the path', () => {
    const damage: [string, (text: string) => Buffer | string][] = [
      ['cut short', (text) => text.slice(0, Math.floor(text.length * 0.7))],
      ['cut right after the header', (text) => text.slice(0, text.indexOf('\n') + 1)],
      [
        'a body edited by one byte',
        (text) => {
          // A digit of a position changed: still valid JSON, still a valid checkpoint, wrong hash.
          const at = text.indexOf('"src/t/0":"') + '"src/t/0":"'.length;
          const digit = text[at]!;
          return text.slice(0, at) + (digit === '9' ? '8' : String(Number(digit) + 1)) + text.slice(at + 1);
        },
      ],
      ['a header that is not sluice\'s', (text) => `{"magic":"other-tool","sha256":"x","bytes":1}\n${text.slice(text.indexOf('\n') + 1)}`],
      ['a header that is not JSON', (text) => `not json\n${text.slice(text.indexOf('\n') + 1)}`],
      ['no header at all (the body alone)', (text) => text.slice(text.indexOf('\n') + 1).trimEnd()],
      ['random bytes', () => randomBytes(512)],
      ['an empty file', () => ''],
    ];
    it.each(damage)('%s', async (_name, damageFile) => {
      const { store, file } = await freshStore();
      await store.commit(checkpoint(4, 2));
      const good = await readFile(file, 'utf8');
      const bad = damageFile(good);
      expect(bad).not.toEqual(good);
      await writeFile(file, bad);
      const err = await refusal(store);
      expect(err.code).toBe('E_STATE_CORRUPT');
      expect(err.message).toContain(file);
      expect(err.where).toBe(file);
    });
  });

  it('a body with a correct hash that is not a checkpoint is refused too', async () => {
    const { store, file } = await freshStore();
    const body = JSON.stringify({ format: 1, hello: 'world' });
    const header = JSON.stringify({ magic: 'sluice-checkpoint', sha256: createHash('sha256').update(body).digest('hex'), bytes: body.length });
    await writeFile(file, `${header}\n${body}\n`);
    const err = await refusal(store);
    expect(err.code).toBe('E_STATE_CORRUPT');
    expect(err.message).toContain(file);
  });

  it('reset removes the checkpoint (and a leftover .tmp); a later load is undefined', async () => {
    const { store, dir, file } = await freshStore();
    await store.commit(checkpoint(1, 1));
    await writeFile(`${file}.tmp`, 'half written');
    await store.reset();
    expect(await readdir(dir)).toEqual([]);
    expect(await store.load()).toBeUndefined();
    await store.reset(); // nothing there: still fine
  });

  it('a crash between writing the .tmp file and the rename leaves the previous checkpoint loadable', async () => {
    const { store, dir, file } = await freshStore();
    const good = checkpoint(7, 2);
    await store.commit(good);
    // What a crash leaves when it strikes after the tmp file was (partly) written, before rename:
    // a torn tmp file beside the good one.
    const torn = (await readFile(file, 'utf8')).slice(0, 40);
    await writeFile(`${file}.tmp`, torn + randomBytes(64).toString('latin1'));
    const restarted = new FileStateStore(dir);
    await restarted.open();
    expect(await restarted.load()).toEqual(good);
    // And the next commit goes through, replacing the leftover tmp file.
    const next = checkpoint(8, 1);
    await restarted.commit(next);
    expect(await restarted.load()).toEqual(next);
    expect((await readdir(dir)).sort()).toEqual([CHECKPOINT_FILE]);
  });
});
