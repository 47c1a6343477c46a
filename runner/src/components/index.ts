/**
 * The one list of every component. Adding a kind = one file in its family folder + one line here.
 * The spec validator, the published JSON Schema, the reference docs and the plan all read these lists.
 */
import type { FormatDef, SinkDef, SourceDef, StepDef } from '../engine/component.ts';
import { debeziumFormat } from './formats/debezium.ts';
import { jsonFormat } from './formats/json.ts';
import { textFormat } from './formats/text.ts';
import { fileSink } from './sinks/file.ts';
import { httpSink } from './sinks/http.ts';
import { kafkaSink } from './sinks/kafka.ts';
import { postgresSink } from './sinks/postgres.ts';
import { stdoutSink } from './sinks/stdout.ts';
import { fileSource } from './sources/file.ts';
import { generatorSource } from './sources/generator.ts';
import { kafkaSource } from './sources/kafka.ts';
import { postgresCdcSource } from './sources/postgres-cdc.ts';
import { postgresQuerySource } from './sources/postgres-query.ts';
import { stdinSource } from './sources/stdin.ts';
import { filterStep } from './steps/filter.ts';
import { joinStep } from './steps/join.ts';
import { setStep } from './steps/set.ts';
import { tableStep } from './steps/table.ts';
import { validateStep } from './steps/validate.ts';
import { windowStep } from './steps/window.ts';

export const sources: readonly SourceDef<unknown>[] = [kafkaSource, postgresCdcSource, postgresQuerySource, fileSource, stdinSource, generatorSource];

export const formats: readonly FormatDef<unknown>[] = [jsonFormat, textFormat, debeziumFormat];

export const steps: readonly StepDef<unknown>[] = [filterStep, setStep, validateStep, windowStep, tableStep, joinStep];

export const sinks: readonly SinkDef<unknown>[] = [kafkaSink, postgresSink, stdoutSink, fileSink, httpSink];
