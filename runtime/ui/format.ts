// Text helpers shared by the Ink view and the plain log: numbers, durations, bars, sparklines, shading.
// Pure functions of their inputs, so both views print the same figures and tests can pin them.

/** `3m12s`, `1h02m03s`, `45s`; `-` for an unknown or infinite duration. */
export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return '-';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const two = (n: number) => String(n).padStart(2, '0');
  if (h > 0) return `${h}h${two(m)}m${two(sec)}s`;
  if (m > 0) return `${m}m${two(sec)}s`;
  return `${sec}s`;
}

/** Compact counts: 950, 12.3k, 4.56M, 1.20G. */
export function formatCount(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '-';
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (a >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return String(Math.round(n));
}

/** Fixed decimals, `-` when unknown; non-finite values (a diverged loss) print as `nan`/`inf`. */
export function formatFixed(x: number | undefined, digits: number): string {
  if (x === undefined) return '-';
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  return x.toFixed(digits);
}

/** Perplexity from a mean cross-entropy loss in nats. */
export function perplexity(loss: number): number {
  return Math.exp(loss);
}

/** Remaining seconds at the observed step rate since this process started the trial. */
export function etaSeconds(step: number, steps: number, firstStep: number, elapsed: number): number | undefined {
  const done = step - firstStep;
  if (done <= 0 || elapsed <= 0) return undefined;
  return ((steps - step) * elapsed) / done;
}

/** Cuts `text` to `width` columns, marking the cut with an ellipsis. */
export function truncate(text: string, width: number): string {
  if (width <= 0) return '';
  if (text.length <= width) return text;
  if (width === 1) return '…';
  return `${text.slice(0, width - 1)}…`;
}

/** `text` cut or right-padded to exactly `width` columns. */
export function fit(text: string, width: number): string {
  return truncate(text, width).padEnd(width);
}

/** A bar of `width` cells, filled in eighths so slow trials still visibly move. */
export function progressBar(fraction: number, width: number): string {
  if (width <= 0) return '';
  const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  const eighths = Math.round(f * width * 8);
  const full = Math.floor(eighths / 8);
  const partial = eighths % 8;
  const partials = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
  const head = '█'.repeat(full) + (partial > 0 ? partials[partial] : '');
  return head + '░'.repeat(width - full - (partial > 0 ? 1 : 0));
}

const SPARK = '▁▂▃▄▅▆▇█';

/**
 * The last values as a sparkline of at most `width` cells. Longer series are averaged into
 * `width` buckets so the whole history stays visible; non-finite values show as `×`.
 */
export function sparkline(values: readonly number[], width: number): string {
  if (width <= 0 || values.length === 0) return '';
  const buckets: number[] = [];
  const n = Math.min(width, values.length);
  for (let b = 0; b < n; b++) {
    const lo = Math.floor((b * values.length) / n);
    const hi = Math.floor(((b + 1) * values.length) / n);
    let sum = 0;
    for (let i = lo; i < hi; i++) sum += values[i]!;
    buckets.push(sum / (hi - lo));
  }
  const finite = buckets.filter(Number.isFinite);
  const min = Math.min(...finite);
  const max = Math.max(...finite);
  const span = max - min;
  return buckets
    .map((v) => {
      if (!Number.isFinite(v)) return '×';
      const level = span > 0 ? Math.round(((v - min) / span) * (SPARK.length - 1)) : 0;
      return SPARK[level];
    })
    .join('');
}

/** Five shades for an expert's share of routed tokens, judged against the uniform share 1/experts. */
export const SHADES = [' ', '░', '▒', '▓', '█'] as const;
/** Upper bounds of the first four shades, as multiples of the uniform share. */
const SHADE_BOUNDS = [0.4, 0.8, 1.2, 1.6];

export function shadeIndex(fraction: number, experts: number): number {
  const ratio = fraction * experts;
  const i = SHADE_BOUNDS.findIndex((b) => ratio < b);
  return i < 0 ? SHADES.length - 1 : i;
}

/** The legend in load fractions: `' '<5% ░<10% ▒<15% ▓<20% █≥20%` for 8 experts. */
export function shadeLegend(experts: number): string {
  const pct = (r: number) => {
    const p = (100 * r) / experts;
    return `${Number.isInteger(p) ? p : p.toFixed(1)}%`;
  };
  const parts = SHADE_BOUNDS.map((b, i) => `${i === 0 ? "' '" : SHADES[i]}<${pct(b)}`);
  parts.push(`${SHADES[SHADES.length - 1]}≥${pct(SHADE_BOUNDS[SHADE_BOUNDS.length - 1]!)}`);
  return parts.join(' ');
}
