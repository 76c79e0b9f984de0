// The Ink app: finished trials go to <Static> (printed once, above), the rest is a small live region
// redrawn at most every `throttleMs`, whatever the rate of step events.
import { Box, Static, Text, useStdout } from 'ink';
import { useLayoutEffect, useState } from 'react';
import type { SweepModel } from './sweep-model.js';
import { finishedLayout, finishedLine, liveLines, messageLine, type Line } from './screen-lines.js';

export interface SweepAppProps {
  model: SweepModel;
  /** Minimum time between redraws; 0 redraws on every event (tests). */
  throttleMs?: number;
  /** Redraw at least this often for the elapsed clock; 0 turns the clock tick off (tests). */
  tickMs?: number;
  /** Overrides the terminal width. */
  columns?: number;
  /** Overrides the terminal height used to bound the live region. */
  rows?: number;
  nextPending?: number;
  maxDetails?: number;
}

export function SweepApp(props: SweepAppProps) {
  const { model } = props;
  useThrottledRedraw(model, props.throttleMs ?? 100, props.tickMs ?? 1000);
  const { stdout } = useStdout();
  // One column of slack: writing the last column makes some terminals wrap early.
  const width = Math.max(20, (props.columns ?? stdout.columns ?? 80) - 1);
  const rows = props.rows ?? stdout.rows ?? 24;
  const total = model.trials.length;
  const layout = finishedLayout(model, width);
  // A copy: <Static> memoises on the array, and the model appends to its own in place.
  const printed = model.printed.slice();
  const live = liveLines(model, {
    width,
    rows,
    ...(props.nextPending !== undefined ? { nextPending: props.nextPending } : {}),
    ...(props.maxDetails !== undefined ? { maxDetails: props.maxDetails } : {}),
  });
  return (
    <>
      <Static items={printed}>
        {(item) => (
          <StyledLine key={item.key} line={'trial' in item ? finishedLine(item.trial, total, width, layout) : messageLine(item.message, width)} />
        )}
      </Static>
      <Box flexDirection="column" width={width}>
        {live.map((line, i) => (
          <StyledLine key={i} line={line} />
        ))}
      </Box>
    </>
  );
}

function StyledLine({ line }: { line: Line }) {
  // An empty <Text> collapses to no line at all; a space keeps blank separator lines.
  if (line.length === 0 || line.every((s) => s.text === '')) return <Text> </Text>;
  return (
    <Text wrap="truncate">
      {line.map((s, i) => (
        <Text key={i} {...(s.color ? { color: s.color } : {})} bold={s.bold ?? false}>
          {s.text}
        </Text>
      ))}
    </Text>
  );
}

/**
 * Re-renders on model changes, at most once per `throttleMs` (first change at once, the rest
 * trailing), plus a clock tick. Subscribes in a layout effect so no event after mount is missed.
 */
function useThrottledRedraw(model: SweepModel, throttleMs: number, tickMs: number): void {
  const [, setVersion] = useState(0);
  useLayoutEffect(() => {
    let last = 0;
    let timer: NodeJS.Timeout | undefined;
    const redraw = () => {
      timer = undefined;
      last = Date.now();
      setVersion((v) => v + 1);
    };
    const unsubscribe = model.subscribe(() => {
      if (throttleMs <= 0) return redraw();
      if (timer) return;
      const wait = last + throttleMs - Date.now();
      if (wait <= 0) redraw();
      else timer = setTimeout(redraw, wait);
    });
    const tick = tickMs > 0 ? setInterval(() => model.endedAt === undefined && redraw(), tickMs) : undefined;
    // Neither timer may keep the process alive once the runner is done.
    tick?.unref();
    return () => {
      unsubscribe();
      if (timer) clearTimeout(timer);
      if (tick) clearInterval(tick);
    };
  }, [model, throttleMs, tickMs]);
}
