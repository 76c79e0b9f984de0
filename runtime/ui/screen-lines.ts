// The terminal view as lines of styled segments, computed from the model. Kept apart from Ink so
// the layout rules (what fits, what is cut, how tall the live region may grow) are plain functions.
import { loadText } from './collapse.js';
import type { TrialStatus } from '../train/events.js';
import {
  etaSeconds,
  fit,
  formatCount,
  formatDuration,
  formatFixed,
  progressBar,
  SHADES,
  shadeIndex,
  shadeLegend,
  sparkline,
  truncate,
} from './format.js';
import type { SweepModel, TrialState } from './sweep-model.js';

export type Color = 'green' | 'red' | 'yellow' | 'cyan' | 'gray' | 'magenta';
export interface Segment {
  text: string;
  color?: Color;
  bold?: boolean;
}
export type Line = Segment[];

export const STATUS_SYMBOL: Record<TrialStatus, string> = {
  pending: '·',
  running: '▶',
  done: '✔',
  failed: '✘',
  skipped: '↷',
  stopped: '■',
};
const STATUS_COLOR: Record<TrialStatus, Color> = {
  pending: 'gray',
  running: 'cyan',
  done: 'green',
  failed: 'red',
  skipped: 'gray',
  stopped: 'yellow',
};

export interface ScreenOptions {
  /** Usable columns; lines never exceed it. */
  width: number;
  /** Terminal rows; the live region stays below this so Ink never clears the screen to redraw it. */
  rows: number;
  /** Pending trials listed by name after the running ones. */
  nextPending?: number;
  /** Running trials that get a sparkline and a heat map. */
  maxDetails?: number;
}

const plain = (text: string): Line => [{ text }];
export const lineText = (line: Line): string => line.map((s) => s.text).join('');

/** The two header lines: what runs where, then the tally and the clock. */
export function headerLines(model: SweepModel, width: number): Line[] {
  const h = model.header;
  if (!h) return [plain(truncate('moec: waiting for the sweep to start', width))];
  const c = model.counts();
  const total = model.trials.length;
  const finished = c.done + c.failed + c.skipped + c.stopped;
  // On a narrow terminal the adapter's long description gives way to its name, so `out` stays.
  let first = `moec  sweep ${h.sweep} · ${h.adapter} · out ${h.out}`;
  if (first.length > width) first = `moec  sweep ${h.sweep} · ${shortAdapter(h.adapter)} · out ${h.out}`;
  const counts: [string, number, boolean][] = [
    ['done', c.done, true],
    ['running', c.running, true],
    ['failed', c.failed, true],
    ['skipped', c.skipped, false],
    ['stopped', c.stopped, false],
    ['pending', c.pending, false],
  ];
  const clock = [`elapsed ${formatDuration(model.elapsedSeconds())}`, ...(c.running + c.pending > 0 ? [`sweep ETA ${formatDuration(model.sweepEtaSeconds())}`] : [])];
  const tallyOf = (all: boolean) => [`trials ${finished}/${total} finished`, ...counts.filter(([, n, always]) => n > 0 || (all && always)).map(([word, n]) => `${n} ${word}`), ...clock].join(' · ');
  // Zero counts go first when the line is too long: the clock and the ETA are what a user looks for.
  let tally = tallyOf(true);
  if (tally.length > width) tally = tallyOf(false);
  return [
    [{ text: truncate(first, width), bold: true }],
    [{ text: truncate(tally, width), ...(c.failed > 0 ? { color: 'red' as const } : {}) }],
  ];
}

/** An adapter's name without its driver details: `llvmpipe: Mesa 25.0.7 (LLVM 15)` -> `llvmpipe`. */
export function shortAdapter(adapter: string): string {
  return adapter.split(/[:(]/)[0]!.trim() || adapter;
}

interface Columns {
  name: number;
  bar: number;
  steps: number;
}

const FIXED = { status: 2, loss: 9, ppl: 9, tps: 8, eta: 9 };

function columns(model: SweepModel, width: number): Columns {
  const maxSteps = Math.max(1, ...model.trials.map((t) => t.info.steps));
  const steps = 2 * String(maxSteps).length + 1;
  const rest = width - FIXED.status - FIXED.loss - FIXED.ppl - FIXED.tps - FIXED.eta - steps - 2;
  // The bar gets a third of the spare room (at most 20 cells), and none on narrow terminals
  // where the name needs it more; the name takes what is left, but no more than the longest name
  // needs: on a wide terminal a padded name column leaves the numbers far from their trial.
  const bar = rest >= 30 ? Math.min(20, Math.floor(rest / 3)) : 0;
  const longest = Math.max('trial'.length, ...model.trials.map((t) => t.info.name.length));
  const name = Math.max(8, Math.min(longest, rest - bar - (bar > 0 ? 1 : 0)));
  return { name, bar, steps };
}

/** The cluster task classifies samples: accuracy instead of perplexity, samples/s instead of tokens/s. */
function tableHeader(cols: Columns, width: number, classification: boolean): Line {
  const text =
    ' '.repeat(FIXED.status) +
    fit('trial', cols.name) +
    ' ' +
    (cols.bar > 0 ? fit('progress', cols.bar) + ' ' : '') +
    fit('step', cols.steps) +
    'loss'.padStart(FIXED.loss) +
    (classification ? 'val acc' : 'val ppl').padStart(FIXED.ppl) +
    (classification ? 'smp/s' : 'tok/s').padStart(FIXED.tps) +
    'ETA'.padStart(FIXED.eta);
  return [{ text: truncate(text, width), color: 'gray' }];
}

function trialRow(t: TrialState, cols: Columns, width: number, model: SweepModel): Line {
  const symbol: Segment = { text: `${STATUS_SYMBOL[t.status]} `, color: STATUS_COLOR[t.status] };
  const name = fit(t.info.name, cols.name) + ' ';
  if (t.status === 'pending') return [symbol, { text: truncate(name + 'pending', width - 2), color: 'gray' }];
  if (t.phase === 'compiling' && t.compile) {
    const c = t.compile;
    const bar = cols.bar > 0 ? [{ text: progressBar(c.total > 0 ? c.done / c.total : 0, cols.bar), color: 'yellow' as const }, { text: ' ' }] : [];
    const shared = c.shared ? `, ${c.shared} reused` : '';
    return clip([symbol, { text: name }, ...bar, { text: `compiling kernels ${c.done}/${c.total}${shared} · ${formatDuration(model.compileSeconds(t))}`, color: 'yellow' }], width);
  }
  const fraction = t.info.steps > 0 ? t.step / t.info.steps : 0;
  const eta = t.status === 'running' ? etaSeconds(t.step, t.info.steps, t.firstStep, t.elapsed) : undefined;
  const rest =
    fit(`${t.step}/${t.info.steps}`, cols.steps) +
    formatFixed(t.loss, 4).padStart(FIXED.loss) +
    (t.validAcc !== undefined ? `${formatFixed(100 * t.validAcc, 1)}%` : formatFixed(t.validPpl, 2)).padStart(FIXED.ppl) +
    formatCount(t.tokensPerSec).padStart(FIXED.tps) +
    formatDuration(eta).padStart(FIXED.eta);
  const line: Line = [symbol, { text: name }];
  if (cols.bar > 0) line.push({ text: progressBar(fraction, cols.bar), color: 'cyan' }, { text: ' ' });
  line.push({ text: rest });
  return clip(line, width);
}

type FinishedField = 'loss' | 'ppl' | 'tps' | 'wall';
/** Column widths of the optional fields of a finished line, with their leading gap. */
const FIELD_WIDTH: Record<FinishedField, number> = { loss: 13, ppl: 17, tps: 14, wall: 15 };
/** Dropped in this order when the terminal is too narrow to show a useful part of the names. */
const DROP_ORDER: FinishedField[] = ['tps', 'loss', 'wall'];

export interface FinishedLayout {
  nameWidth: number;
  fields: Set<FinishedField>;
}

/** One layout for all finished lines, so their columns line up: name width and the fields that fit. */
export function finishedLayout(model: SweepModel, width: number): FinishedLayout {
  const longest = Math.max(0, ...model.trials.map((t) => t.info.name.length));
  const digits = String(model.trials.length).length;
  const steps = 2 * String(Math.max(1, ...model.trials.map((t) => t.info.steps))).length + 1;
  // Symbol, `[ i/n] `, two spaces, progress; then the fields.
  const base = 2 + (2 * digits + 4) + 2 + steps;
  const fields = new Set<FinishedField>(['loss', 'ppl', 'tps', 'wall']);
  const room = () => width - base - [...fields].reduce((sum, f) => sum + FIELD_WIDTH[f], 0);
  for (const f of DROP_ORDER) {
    if (room() >= Math.min(longest, 24)) break;
    fields.delete(f);
  }
  // Never wider than the room left (a wider name pushed the wall time off an 80-column screen).
  return { nameWidth: Math.max(Math.min(longest, 12), Math.min(longest, room())), fields };
}

/** One line per finished trial, for the `<Static>` area: it is printed once and never redrawn. */
export function finishedLine(t: TrialState, total: number, width: number, layout: FinishedLayout): Line {
  const symbol: Segment = { text: `${STATUS_SYMBOL[t.status]} `, color: STATUS_COLOR[t.status] };
  const index = `[${String(t.index).padStart(String(total).length)}/${total}] `;
  const progress = `${t.step}/${t.info.steps}`;
  const wall = `wall ${formatDuration(t.wallSeconds)}`;
  let detail: string;
  if (t.status === 'done') {
    const f = layout.fields;
    detail =
      progress.padEnd(2 * String(t.info.steps).length + 1) +
      (f.has('loss') ? `  loss ${formatFixed(t.loss, 4)}` : '') +
      (f.has('ppl') ? (t.validAcc !== undefined ? `  val acc ${formatFixed(t.validAcc, 3).padStart(7)}` : `  val ppl ${formatFixed(t.validPpl, 2).padStart(7)}`) : '') +
      (f.has('tps') ? `  ${formatCount(t.tokensPerSec).padStart(6)} ${t.info.task === 'classification' ? 'smp/s' : 'tok/s'}` : '') +
      (f.has('wall') ? `  ${wall}` : '');
  } else if (t.status === 'failed') {
    detail = `failed at ${progress}, ${wall}: ${(t.error ?? 'no error message').split('\n')[0]}`;
  } else if (t.status === 'skipped') {
    // Skipped trials (finished in an earlier run, filtered out) never ran here: no progress to show.
    detail = t.error ? `skipped: ${t.error.split('\n')[0]}` : 'skipped';
  } else {
    detail = `${t.status} at ${progress}`;
  }
  const line: Line = [symbol, { text: index, color: 'gray' }, { text: `${fit(t.info.name, layout.nameWidth)}  ` }];
  line.push(t.status === 'failed' ? { text: detail, color: 'red' } : { text: detail });
  return clip(line, width);
}

/** A runner message in the static area: its first line, cut to the width, marked apart from trials. */
export function messageLine(text: string, width: number): Line {
  return [{ text: truncate(`» ${text.split('\n')[0]}`, width), color: 'yellow' }];
}

/**
 * The router's losses and drops at the last logged step, over the MoE layers (mean, with the worst
 * layer's drop); a shorter wording when `width` is too narrow for the full one.
 */
export function moeStatsText(m: { balance: number[]; z: number[]; dropped: number[] }, width = Infinity): string {
  const mean = (v: number[]) => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN);
  const layers = m.balance.length;
  const dropped = m.dropped.length ? Math.max(...m.dropped) : NaN;
  const [bal, z, drop, worst] = [formatFixed(mean(m.balance), 3), formatFixed(mean(m.z), 3), formatFixed(100 * mean(m.dropped), 1), formatFixed(100 * dropped, 1)];
  const full = `balance loss ${bal} · z loss ${z} · dropped ${drop}% (worst layer ${worst}%)${layers > 1 ? ` · mean of ${layers} layers` : ''}`;
  if (full.length <= width) return full;
  return `balance ${bal} · z ${z} · dropped ${drop}% (worst ${worst}%)${layers > 1 ? ` · ${layers}-layer mean` : ''}`;
}

/** The sparkline and the expert-load heat map of one running trial. */
export function detailLines(t: TrialState, width: number): Line[] {
  const lines: Line[] = [[{ text: '▶ ', color: 'cyan' }, { text: truncate(t.info.name, width - 2), bold: true }]];
  if (t.phase === 'compiling' && t.compile) {
    // Nothing trains yet: say what the wait is, not an empty sparkline.
    lines.push(plain(truncate(`  compiling ${t.compile.total - t.compile.done} more kernel${t.compile.total - t.compile.done === 1 ? '' : 's'} before step 1 (not counted in tok/s or the ETA)`, width)));
    return lines.map((l) => clip(l, width));
  }
  const first = t.losses[0];
  const last = t.loss;
  const range = first !== undefined && last !== undefined ? ` ${formatFixed(first, 4)} → ${formatFixed(last, 4)}` : '';
  const sparkWidth = Math.max(0, Math.min(60, width - 8 - range.length));
  lines.push([{ text: '  loss ' }, { text: sparkline(t.losses, sparkWidth), color: 'magenta' }, { text: range }]);
  if (t.info.moeLayers === 0 || t.info.experts === 0) {
    lines.push(plain('  dense model: no expert load'));
    return lines.map((l) => clip(l, width));
  }
  if (t.moe) lines.push(plain(truncate(`  ${moeStatsText(t.moe, width - 2)}`, width)));
  if (t.load) lines.push(plain(truncate(`  load (max/mean, dead): ${loadText(t.load)}`, width)));
  if (t.collapse) lines.push([{ text: truncate(`  ⚠ ${t.collapse}`, width), color: 'red' }]);
  if (!t.expertLoad) {
    lines.push(plain(truncate('  expert load: waiting for the first evaluation', width)));
    return lines.map((l) => clip(l, width));
  }
  const experts = t.info.experts;
  lines.push(plain(`  expert load at step ${t.evalStep} (${t.expertLoad.length} layers × ${experts} experts)`));
  const label = (i: number) => `  L${String(i).padEnd(String(t.expertLoad!.length - 1).length)} `;
  const labelWidth = label(0).length;
  // Two columns per expert when they fit, else one, else as many as fit and a mark for the rest.
  const cell = labelWidth + 2 * experts + 2 <= width ? 2 : 1;
  const shown = Math.min(experts, Math.floor((width - labelWidth - 2) / cell));
  t.expertLoad.forEach((row, layer) => {
    const cells = row.slice(0, shown).map((f) => SHADES[shadeIndex(f, experts)]!.repeat(cell)).join('');
    lines.push([{ text: label(layer) }, { text: `│${cells}│`, color: 'yellow' }, { text: shown < experts ? '…' : '' }]);
  });
  lines.push([{ text: truncate(`  load per expert: ${shadeLegend(experts)}`, width), color: 'gray' }]);
  return lines.map((l) => clip(l, width));
}

/**
 * Everything that is redrawn: header, table of running and next pending trials, details.
 * Its height is bounded by the terminal, not by the size of the sweep.
 */
export function liveLines(model: SweepModel, opts: ScreenOptions): Line[] {
  const { width } = opts;
  const budget = Math.max(4, opts.rows - 2);
  const out: Line[] = [...headerLines(model, width)];
  if (!model.header) return out;
  const cols = columns(model, width);
  const running = model.trials.filter((t) => t.status === 'running');
  const pending = model.trials.filter((t) => t.status === 'pending');
  const table: Line[] = [tableHeader(cols, width, model.trials.some((t) => t.info.task === 'classification'))];
  for (const t of running) table.push(trialRow(t, cols, width, model));
  const shownPending = pending.slice(0, opts.nextPending ?? 3);
  for (const t of shownPending) table.push(trialRow(t, cols, width, model));
  const more = pending.length - shownPending.length;
  if (more > 0) table.push([{ text: truncate(`  … ${more} more pending`, width), color: 'gray' }]);
  if (running.length === 0 && pending.length === 0) return out;
  out.push(plain(''), ...table);
  for (const t of running.slice(0, opts.maxDetails ?? 2)) {
    const details = detailLines(t, width);
    if (out.length + 1 + details.length > budget) break;
    out.push(plain(''), ...details);
  }
  return out.slice(0, budget);
}

/** Cuts a line of segments to `width` columns. */
function clip(line: Line, width: number): Line {
  const out: Line = [];
  let left = width;
  for (const seg of line) {
    if (left <= 0) break;
    if (seg.text.length <= left) {
      out.push(seg);
      left -= seg.text.length;
    } else {
      out.push({ ...seg, text: truncate(seg.text, left) });
      left = 0;
    }
  }
  return out;
}
