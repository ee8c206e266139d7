/**
 * The extension/CLI ↔ backend protocol: JSON-RPC 2.0 over stdio with `Content-Length` framing. The params
 * and results are the backend's contracts (src/core/contracts.ts, generated from backend/vtrans/protocol.py);
 * this module only binds them to vscode-jsonrpc's request and notification types.
 */
import { NotificationType, NotificationType0, RequestType, RequestType0 } from 'vscode-jsonrpc/node';
import type {
  AddHeadParams,
  AddHeadResult,
  CompressResult,
  CompressSettings,
  DistillSettings,
  EstimateParams,
  EstimateResult,
  EvaluateParams,
  InitializeParams,
  InitializeResult,
  InspectParams,
  InspectResult,
  Metric,
  PredictParams,
  PredictResult,
  ProbeParams,
  ProbeResult,
  ProgressParams,
  RecordMeasurementsParams,
  RethresholdParams,
  RethresholdResult,
  RunReport,
  SweepParams,
  SweepResult,
  VIBSettings,
} from './contracts';
import { ERROR_CODES } from './contracts';

export type {
  AddHeadParams,
  AddHeadResult,
  CompressResult,
  EstimateParams,
  EstimateResult,
  EvaluateParams,
  HeadProbe,
  InitializeResult,
  InspectResult,
  PredictParams,
  PredictResult,
  ProbeParams,
  ProbeResult,
  ProgressParams,
  RecordMeasurementsParams,
  RethresholdParams,
  RethresholdResult,
  SweepParams,
  SweepResult,
} from './contracts';

/** The `compress` request's params are the compression settings (run.json stores the same object). */
export type CompressParams = CompressSettings;
export type DistillParams = DistillSettings;
export type VibParams = VIBSettings;

export const ErrorCodes = ERROR_CODES;

export const Requests = {
  initialize: new RequestType<InitializeParams, InitializeResult, void>('initialize'),
  inspect: new RequestType<InspectParams, InspectResult, void>('inspect'),
  addHead: new RequestType<AddHeadParams, AddHeadResult, void>('addHead'),
  compress: new RequestType<CompressSettings, CompressResult, void>('compress'),
  evaluate: new RequestType<EvaluateParams, Metric, void>('evaluate'),
  predict: new RequestType<PredictParams, PredictResult, void>('predict'),
  rethreshold: new RequestType<RethresholdParams, RethresholdResult, void>('rethreshold'),
  sweep: new RequestType<SweepParams, SweepResult, void>('sweep'),
  probe: new RequestType<ProbeParams, ProbeResult, void>('probe'),
  recordMeasurements: new RequestType<RecordMeasurementsParams, RunReport, void>('recordMeasurements'),
  estimate: new RequestType<EstimateParams, EstimateResult, void>('estimate'),
  shutdown: new RequestType0<null, void>('shutdown'),
};

export const Notifications = {
  progress: new NotificationType<ProgressParams>('progress'),
  exit: new NotificationType0('exit'),
};
