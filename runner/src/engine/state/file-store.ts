/**
 * The `file` state store: one checkpoint file per application in a state directory, the default
 * when a pipeline reads no Kafka. The file holds everything (source positions included: file
 * lines, PostgreSQL LSNs, Kafka offsets), so it is the commit point itself.
 *
 * A commit writes `checkpoint.json.tmp`, fsyncs it, renames it over `checkpoint.json` and fsyncs
 * the directory (as Kafka's OffsetCheckpoint does): a crash leaves the old file or the new one,
 * never a torn one. The first line is a header with a SHA-256 of the body, so a file cut short or
 * edited by hand is refused with its path, not half-read.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { checkpointFromJson, checkpointToJson, StateError, type Checkpoint, type CommitFigures, type StateStore } from '../checkpoint/checkpoint.ts';
import { errorMessage } from '../errors.ts';

export const CHECKPOINT_FILE = 'checkpoint.json';
const MAGIC = 'sluice-checkpoint';

interface FileHeader {
  magic: string;
  sha256: string;
  bytes: number;
}

export class FileStateStore implements StateStore {
  readonly description: string;
  private readonly file: string;

  constructor(readonly dir: string) {
    this.file = path.join(dir, CHECKPOINT_FILE);
    this.description = `file ${this.file}`;
  }

  async open(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
  }

  async load(): Promise<Checkpoint | undefined> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new StateError('E_STATE_READ', `cannot read ${this.file}: ${errorMessage(err)}`, this.file, { cause: err });
    }
    return parseCheckpointFile(text, this.file);
  }

  async commit(checkpoint: Checkpoint): Promise<CommitFigures> {
    const body = JSON.stringify(checkpointToJson(checkpoint));
    const header: FileHeader = { magic: MAGIC, sha256: sha256(body), bytes: Buffer.byteLength(body) };
    const tmp = `${this.file}.tmp`;
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(`${JSON.stringify(header)}\n${body}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.file);
    await syncDirectory(this.dir);
    let entries = 0;
    for (const s of checkpoint.states.values()) entries += s.entries.size;
    return { written: entries, deleted: 0, bytes: header.bytes };
  }

  async reset(): Promise<void> {
    await rm(this.file, { force: true });
    await rm(`${this.file}.tmp`, { force: true });
  }

  async close(): Promise<void> {}
}

/** Reads a checkpoint file's text: header line, then the body whose hash the header gives. */
export function parseCheckpointFile(text: string, file: string): Checkpoint {
  const newline = text.indexOf('\n');
  const refuse = (why: string): never => {
    throw new StateError('E_STATE_CORRUPT', `${file} is not a usable sluice checkpoint: ${why}; run with --reset-state to start over`, file);
  };
  if (newline < 0) return refuse('no header line');
  let header: unknown;
  try {
    header = JSON.parse(text.slice(0, newline));
  } catch {
    return refuse('the header is not JSON');
  }
  const h = header as Partial<FileHeader> | null;
  if (!h || h.magic !== MAGIC || typeof h.sha256 !== 'string') return refuse('the header is not a sluice checkpoint header');
  const body = text.slice(newline + 1).replace(/\n$/, '');
  if (sha256(body) !== h.sha256) return refuse('its checksum does not match (cut short or edited)');
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return refuse('the body is not JSON');
  }
  return checkpointFromJson(json, file);
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Makes a rename durable. Some platforms cannot open a directory for syncing; those skip it, as Kafka does. */
async function syncDirectory(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // best effort
  } finally {
    await fh?.close();
  }
}
