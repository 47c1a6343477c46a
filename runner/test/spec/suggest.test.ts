import { describe, expect, it } from 'vitest';
import { closest, didYouMean, editDistance } from '../../src/spec/suggest.ts';

describe('editDistance', () => {
  it('counts insertions, deletions, substitutions and neighbour swaps as one edit each', () => {
    expect(editDistance('window', 'window')).toBe(0);
    expect(editDistance('windw', 'window')).toBe(1);
    expect(editDistance('windowx', 'window')).toBe(1);
    expect(editDistance('wendow', 'window')).toBe(1);
    expect(editDistance('strat', 'start')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
  });
});

describe('closest', () => {
  it('suggests within a third of the word length, at least one edit', () => {
    expect(closest('windw', ['window', 'filter', 'set'])).toBe('window');
    expect(closest('fliter', ['window', 'filter', 'set'])).toBe('filter');
    expect(closest('st', ['set'])).toBe('set');
    expect(closest('xyz', ['set'])).toBeUndefined();
  });

  it('prefers a case-only difference, and never suggests the word itself', () => {
    expect(closest('Topic', ['topics', 'topic'])).toBe('topic');
    expect(closest('topic', ['topic'])).toBeUndefined();
  });

  it('phrases the suggestion, or says nothing', () => {
    expect(didYouMean('lat', ['out', 'errors', 'late'])).toBe(' (did you mean `late`?)');
    expect(didYouMean('zzz', ['out'])).toBe('');
  });
});
