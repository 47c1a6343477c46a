/**
 * The one list of every component. Adding a kind = one file in its family folder + one line here.
 * The spec validator, the published JSON Schema, the reference docs and the plan all read these lists.
 */
import type { FormatDef, SinkDef, SourceDef, StepDef } from '../engine/component.ts';
import { kafkaSink } from './sinks/kafka.ts';
import { kafkaSource } from './sources/kafka.ts';
import { filterStep } from './steps/filter.ts';
import { setStep } from './steps/set.ts';
import { windowStep } from './steps/window.ts';

export const sources: readonly SourceDef<unknown>[] = [kafkaSource];

export const formats: readonly FormatDef<unknown>[] = [];

export const steps: readonly StepDef<unknown>[] = [filterStep, setStep, windowStep];

export const sinks: readonly SinkDef<unknown>[] = [kafkaSink];
