/** One-line progress text for the CLI's stderr bar and the extension's status bar / notification. */
import type { ProgressParams } from './protocol';

export const PHASE_LABEL: Record<ProgressParams['phase'], string> = {
  load: 'loading',
  prune: 'training masks',
  select: 'selecting units',
  finetune: 'fine-tuning',
  export: 'exporting',
  sweep: 'sweeping budgets',
  probe: 'probing attention',
  evaluate: 'evaluating',
};

export function formatEta(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export function progressDetail(p: ProgressParams): string {
  const parts: string[] = [];
  if (p.loss !== undefined) parts.push(`loss ${p.loss.toFixed(3)}`);
  if (p.sparsity !== undefined)
    parts.push(
      `pruned ${(100 * p.sparsity).toFixed(0)}%${p.target !== undefined ? ` (target ${(100 * (1 - p.target)).toFixed(0)}%)` : ''}`,
    );
  if (p.lambda) parts.push(`λ ${p.lambda[0].toFixed(2)}`);
  const eta = formatEta(p.eta);
  if (eta) parts.push(`eta ${eta}`);
  return parts.join(' · ');
}

export function progressBar(p: ProgressParams, width = 24): string {
  const frac = p.total > 0 ? Math.min(1, p.step / p.total) : 0;
  const filled = Math.round(frac * width);
  const label = PHASE_LABEL[p.phase] ?? p.phase;
  return `${label.padEnd(17)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.step}/${p.total}  ${progressDetail(p)}`;
}
