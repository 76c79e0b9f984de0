/** Runs a bench script's main and exits (Dawn would keep Node alive), printing a failure's message. */
export function runBench(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err) => {
      console.error(err?.format?.() ?? err);
      process.exit(1);
    },
  );
}
