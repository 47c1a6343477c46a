/**
 * The assertion the employee pipeline's Kafka tests share: what reached the output topics against
 * the independent computation (employee-outputs.ts, no sluice code). Apart from employee-outputs.ts
 * because the benches use that module outside a test.
 */
import { expect } from 'vitest';
import { compareOutputs, type Expected, type OutputReader } from './employee-outputs.ts';

/** Every insert enriched and every closed hour summarised, exactly once and right, and nothing late. */
export function expectExactlyOnceAndRight(reader: OutputReader, expected: Expected): ReturnType<typeof compareOutputs> {
  const result = compareOutputs(reader, expected);
  expect(result.missing.slice(0, 10), `${result.missing.length} of ${expected.inserts.size} inserts never enriched`).toEqual([]);
  expect(result.wrong.slice(0, 10), `${result.wrong.length} of ${result.summaries} summaries wrong`).toEqual([]);
  expect(result.unsummarised.slice(0, 10), `${result.unsummarised.length} closed hours never summarised`).toEqual([]);
  expect(result.processedDuplicates, 'enriched rows written more than once').toBe(0);
  expect(result.summaryDuplicates, 'summaries written more than once').toBe(0);
  expect(reader.late.slice(0, 5), `${reader.late.length} records went to the late topic`).toEqual([]);
  return result;
}
