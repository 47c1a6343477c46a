/**
 * Where each character of a scalar's parsed value sits in the source text. YAML unescapes quoted
 * scalars, strips block indentation and folds lines, so "character 17 of the expression" is not
 * "17 characters after the node starts". Diagnostics inside a value (a JSONata syntax error, an
 * unset `${VAR}`) need the real line and column, for plain, quoted and block (`|`, `>`) scalars.
 */

/** One character of the value as the source spells it, at a source offset. */
interface Unit {
  char: string;
  offset: number;
}

export type ScalarStyle = 'PLAIN' | 'QUOTE_DOUBLE' | 'QUOTE_SINGLE' | 'BLOCK_LITERAL' | 'BLOCK_FOLDED';

const DOUBLE_QUOTE_ESCAPES: Record<string, string> = {
  '0': '\0', a: '\x07', b: '\b', t: '\t', '\t': '\t', n: '\n', v: '\v', f: '\f', r: '\r', e: '\x1b',
  ' ': ' ', '"': '"', '/': '/', '\\': '\\', N: '\x85', _: '\xa0', L: '\u2028', P: '\u2029',
};
const HEX_ESCAPE_LENGTH: Record<string, number> = { x: 2, u: 4, U: 8 };

function pushText(units: Unit[], text: string, offset: number): void {
  for (const ch of text) units.push({ char: ch, offset });
}

function plainUnits(text: string, start: number, end: number): Unit[] {
  const units: Unit[] = [];
  for (let i = start; i < end; i++) units.push({ char: text[i]!, offset: i });
  return units;
}

function singleQuotedUnits(text: string, start: number, end: number): Unit[] {
  const units: Unit[] = [];
  for (let i = start + 1; i < end; i++) {
    const ch = text[i]!;
    if (ch === "'") {
      if (text[i + 1] !== "'") break; // closing quote
      units.push({ char: "'", offset: i });
      i++;
      continue;
    }
    units.push({ char: ch, offset: i });
  }
  return units;
}

function doubleQuotedUnits(text: string, start: number, end: number): Unit[] {
  const units: Unit[] = [];
  for (let i = start + 1; i < end; i++) {
    const ch = text[i]!;
    if (ch === '"') break;
    if (ch !== '\\') {
      units.push({ char: ch, offset: i });
      continue;
    }
    const next = text[i + 1] ?? '';
    if (next === '\n' || next === '\r') {
      // Escaped line break: the break and the next line's indentation vanish.
      i++;
      while (text[i + 1] === '\n' || text[i + 1] === ' ' || text[i + 1] === '\t') i++;
      continue;
    }
    const hexLength = HEX_ESCAPE_LENGTH[next];
    if (hexLength !== undefined) {
      const code = Number.parseInt(text.slice(i + 2, i + 2 + hexLength), 16);
      pushText(units, Number.isNaN(code) ? next : String.fromCodePoint(code), i);
      i += 1 + hexLength;
      continue;
    }
    pushText(units, DOUBLE_QUOTE_ESCAPES[next] ?? next, i);
    i++;
  }
  return units;
}

/** Block scalars: skip the header line, then drop each line's indentation (auto-detected from the first non-empty line). */
function blockUnits(text: string, start: number, end: number): Unit[] {
  const units: Unit[] = [];
  const headerEnd = text.indexOf('\n', start);
  if (headerEnd < 0 || headerEnd >= end) return units;
  const body = text.slice(headerEnd + 1, end);
  const firstContent = body.split('\n').find((line) => line.trim().length > 0) ?? '';
  const indent = firstContent.length - firstContent.trimStart().length;
  let i = headerEnd + 1;
  while (i < end) {
    let skipped = 0;
    while (skipped < indent && text[i] === ' ' && i < end) {
      i++;
      skipped++;
    }
    while (i < end && text[i] !== '\n') {
      units.push({ char: text[i]!, offset: i });
      i++;
    }
    if (i < end) {
      units.push({ char: '\n', offset: i });
      i++;
    }
  }
  return units;
}

const isSpace = (ch: string) => ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r';

/**
 * Aligns the parsed value with the source units greedily: equal characters map to each other;
 * a value space or newline may stand for a folded line break; anything else in the source
 * (indentation, trailing spaces, folded extra breaks) is skipped.
 */
function align(units: readonly Unit[], value: string, fallback: number): number[] {
  const offsets: number[] = new Array(value.length + 1);
  let j = 0;
  let last = units[0]?.offset ?? fallback;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    let mapped: number | undefined;
    while (j < units.length) {
      const unit = units[j]!;
      j++;
      if (unit.char === ch || (isSpace(ch) && unit.char === '\n')) {
        mapped = unit.offset;
        break;
      }
    }
    last = mapped ?? last;
    offsets[i] = last;
  }
  offsets[value.length] = units.length > 0 ? units[units.length - 1]!.offset + 1 : fallback;
  return offsets;
}

/**
 * Source offset of each character of `value` (plus one past the end), for a scalar spanning
 * `text[start, end)` in the given style.
 */
export function scalarValueOffsets(text: string, start: number, end: number, style: ScalarStyle | undefined, value: string): number[] {
  let units: Unit[];
  switch (style) {
    case 'QUOTE_DOUBLE':
      units = doubleQuotedUnits(text, start, end);
      break;
    case 'QUOTE_SINGLE':
      units = singleQuotedUnits(text, start, end);
      break;
    case 'BLOCK_LITERAL':
    case 'BLOCK_FOLDED':
      units = blockUnits(text, start, end);
      break;
    default:
      units = plainUnits(text, start, end);
  }
  return align(units, value, start);
}
