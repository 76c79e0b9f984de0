#!/usr/bin/env node
import { main } from './main.js';

// Exit explicitly: a Dawn instance that is still referenced keeps Node alive.
main(process.argv.slice(2)).then(
  (status) => process.exit(status),
  (err) => {
    console.error(err);
    process.exit(70);
  },
);
