#!/usr/bin/env node
import { main } from './main.js';

// Writes to a pipe are asynchronous in Node: exiting at once would cut `moec compile --emit plan |
// jq` short at the pipe's buffer size. Each stream's write callback runs once what came before it
// has been handed to the OS.
const flushed = (s: NodeJS.WriteStream) => new Promise<void>((resolve) => s.write('', () => resolve()));
const exit = async (status: number) => {
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(status); // explicitly: a Dawn instance that is still referenced keeps Node alive
};

main(process.argv.slice(2)).then(exit, async (err) => {
  console.error(err);
  await exit(70);
});
