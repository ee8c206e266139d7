/**
 * The latency pass that ends a benchmark: every output model is measured again, after all training is over,
 * with its teacher interleaved (teacher, student, teacher, student, …). The figures taken during each
 * compression share the machine with whatever ran beside it; here both models of a ratio see the same load,
 * and the median over rounds drops a round that a background burst spoiled.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { closeOnnx, openOnnx, type OnnxModel } from '../src/core/onnx';
import { defaultThreads, measureLatency, median } from '../src/core/onnxEval';

export const ROUNDS = 3;

type Latency = Record<string, number>;

function medianOf(rounds: Latency[]): Latency {
  return Object.fromEntries(Object.keys(rounds[0]).map((key) => [key, median(rounds.map((r) => r[key]))]));
}

/** Teacher and student latency (ms, batch 1 and 32) of one run directory, measured interleaved over ROUNDS rounds. */
export async function remeasureRun(runDir: string): Promise<{ teacher: Latency; student: Latency }> {
  const report = JSON.parse(fs.readFileSync(path.join(runDir, 'report.json'), 'utf8')) as {
    model: { vocab: number };
    student: { onnx?: { seqLen: number } };
  };
  // The sequence length the run measured at (capped by the model's positions), so the figures stay comparable.
  const seqLen = report.student.onnx?.seqLen ?? 128;
  const threads = defaultThreads();
  const models: OnnxModel[] = [];
  try {
    const teacher = await openOnnx(path.join(runDir, 'teacher.onnx'), threads);
    models.push(teacher);
    const student = await openOnnx(path.join(runDir, 'model.onnx'), threads);
    models.push(student);
    const t: Latency[] = [];
    const s: Latency[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      t.push(await measureLatency(teacher, report.model.vocab, { seqLen }));
      s.push(await measureLatency(student, report.model.vocab, { seqLen }));
    }
    return { teacher: medianOf(t), student: medianOf(s) };
  } finally {
    for (const m of models) await closeOnnx(m);
  }
}
