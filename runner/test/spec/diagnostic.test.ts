import { describe, expect, it } from 'vitest';
import { DIAGNOSTIC_CODES, positionText, renderDiagnostic, renderDiagnostics, sortDiagnostics, type Diagnostic } from '../../src/spec/diagnostic.ts';

const d = (line: number, col: number, extra: Partial<Diagnostic> = {}): Diagnostic => ({ code: 'E_DURATION', message: 'm', file: 'p.yaml', line, col, ...extra });

describe('renderDiagnostic', () => {
  const text = 'a: 1\n\ttumbling: 1 hour\n';

  it('prints the header, the source line with tabs as spaces, a caret as wide as the span, and help', () => {
    expect(renderDiagnostic(d(2, 12, { span: 6, hint: 'write 1h' }), text)).toBe(
      ['p.yaml:2:12: error[E_DURATION]: m', '  |', '2 |  tumbling: 1 hour', '  |            ^^^^^^', '  = help: write 1h'].join('\n'),
    );
  });

  it('keeps the caret on the line when the span runs past its end', () => {
    expect(renderDiagnostic(d(1, 4, { span: 50 }), text).split('\n')[3]).toBe('  |    ^');
  });

  it('prints only the header without the source', () => {
    expect(renderDiagnostic(d(1, 1))).toBe('p.yaml:1:1: error[E_DURATION]: m');
  });

  it('prints a command-line mistake with the file but no line, source or caret', () => {
    const cli: Diagnostic = { code: 'E_PROFILE_UNKNOWN', message: '--profile `lcoal`: no such profile (did you mean `local`?)', file: 'p.yaml', hint: 'profiles in this spec: `local`' };
    expect(renderDiagnostic(cli, text)).toBe('p.yaml: error[E_PROFILE_UNKNOWN]: --profile `lcoal`: no such profile (did you mean `local`?)\n  = help: profiles in this spec: `local`');
  });

  it('ends a list with a count', () => {
    expect(renderDiagnostics([d(1, 1), d(2, 1)], () => undefined)).toBe('p.yaml:1:1: error[E_DURATION]: m\n\np.yaml:2:1: error[E_DURATION]: m\n\n2 errors in 1 file\n');
  });
});

describe('sortDiagnostics', () => {
  it('orders by file, line and column, and drops exact repeats', () => {
    expect(sortDiagnostics([d(3, 1), d(1, 5), d(1, 2), d(1, 5)]).map((x) => `${x.line}:${x.col}`)).toEqual(['1:2', '1:5', '3:1']);
  });

  it('puts command-line mistakes first', () => {
    const cli: Diagnostic = { code: 'E_SET_PATH', message: 'm', file: 'p.yaml' };
    expect(sortDiagnostics([d(1, 1), cli]).map(positionText)).toEqual(['command line', '1:1']);
  });
});

describe('DIAGNOSTIC_CODES', () => {
  it('describes every code in one line', () => {
    for (const [code, line] of Object.entries(DIAGNOSTIC_CODES)) {
      expect(code).toMatch(/^E_[A-Z_]+$/);
      expect(line).not.toContain('\n');
    }
  });
});
