#!/usr/bin/env node
/**
 * The headless VTrans CLI over src/core (no editor needed): inspect, compress, eval, probe, sweep, export.
 * User mistakes print one line and exit 2; `--json` makes the last stdout line one JSON object.
 */
import { parseArgs } from 'node:util';
import { errorMessage, isUserError, UserError } from './core/errors';
import { formatInspect, inspectModel } from './core/inspect';
import { defaultCandidates, findPython } from './core/python';

const USAGE = `Usage: vtrans <command> [options]

Commands:
  inspect <modelDir> [--seq-len N] [--json]     architecture, parameter counts and FLOPs, from headers only
  doctor [--json]                               find a Python with PyTorch for the backend

Run 'vtrans <command> --help' for a command's options.`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  if (command === 'inspect') return inspect(rest);
  if (command === 'doctor') return doctor(rest);
  throw new UserError(`Unknown command "${command}".`, `Run 'vtrans --help' for the list.`);
}

function inspect(args: string[]): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { json: { type: 'boolean' }, 'seq-len': { type: 'string' }, task: { type: 'string' } },
  });
  if (positionals.length !== 1) throw new UserError('inspect takes one model directory.', 'Usage: vtrans inspect <modelDir> [--seq-len N] [--json]');
  const seqLen = values['seq-len'] === undefined ? 128 : Number(values['seq-len']);
  if (!Number.isInteger(seqLen) || seqLen < 1) throw new UserError(`--seq-len must be a positive integer, got "${values['seq-len']}".`);
  const task = values.task as 'classification' | 'lm' | undefined;
  if (task !== undefined && task !== 'classification' && task !== 'lm') throw new UserError(`--task must be classification or lm, got "${task}".`);
  const result = inspectModel(positionals[0], { seqLen, task });
  console.log(values.json ? JSON.stringify(result) : formatInspect(result));
  return 0;
}

async function doctor(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean' } } });
  const info = await findPython(defaultCandidates());
  if (values.json) console.log(JSON.stringify(info));
  else console.log(`${info.executable}: Python ${info.python}, torch ${info.torch}${info.cuda ? `, CUDA with ${info.gpus} GPU(s)` : ', CPU only'}, numpy ${info.numpy ?? 'missing'}, onnx ${info.onnx ?? 'missing'}`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (isUserError(e) || (e as NodeJS.ErrnoException)?.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || (e as NodeJS.ErrnoException)?.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      console.error(`vtrans: ${errorMessage(e)}`);
      process.exitCode = 2;
    } else {
      console.error(`vtrans: internal error: ${e instanceof Error ? e.stack : String(e)}`);
      process.exitCode = 1;
    }
  },
);
