/**
 * Which members of `$meta` a plan's nodes may read, so that a source need not make exact what
 * nothing reads (a Debezium event's 19-digit `ts_ns`, in `source` and at the top).
 *
 * Only expressions read `$meta`, and they are in the config as written (components that read a
 * member in code, as the table step reads `op`, read none that could be inexact): `$meta.name`
 * reads that member; `$meta` any other way (whole, indexed, bound to a variable) or `$eval` may
 * read any. A repartition that carries `$meta` hands it to the nodes after it, so it reads any.
 */
import type { PlanNode } from './types.ts';

/** Whether some node may read this member of `$meta`. */
export type MetaRead = (member: string) => boolean;

/** `$meta`, and the member name right after it when there is one. */
const META_USE = /\$meta\b(?:\s*\.\s*([A-Za-z_][A-Za-z0-9_]*))?/g;

export function metaRead(nodes: readonly PlanNode[]): MetaRead {
  const members = new Set<string>();
  for (const node of nodes) {
    if (node.role === 'sink' && node.kind === 'repartition' && !carriesNoMeta(node.config)) return () => true;
    const text = configText(node);
    if (text.includes('$eval')) return () => true;
    for (const use of text.matchAll(META_USE)) {
      if (use[1] === undefined) return () => true;
      members.add(use[1]);
    }
  }
  return (member) => members.has(member);
}

function carriesNoMeta(config: unknown): boolean {
  return typeof config === 'object' && config !== null && (config as { meta?: unknown }).meta === false;
}

/** Whether a node's config may read `$meta` at all. */
export function mentionsMeta(node: PlanNode): boolean {
  const text = configText(node);
  return text.includes('$meta') || text.includes('$eval');
}

/** A node's config as written, as text: where its expressions are. */
function configText(node: PlanNode): string {
  return JSON.stringify(node.config) ?? '';
}
