import { after } from 'node:test';
import { Gpu } from '../../runtime/gpu/device.js';

let opened: Promise<Gpu> | undefined;

// Registered at import, so it hangs off the file's root test, not whichever test opened the device.
after(async () => {
  if (opened) (await opened).destroy();
});

/** One device per test file, destroyed when the file's tests end (else Dawn keeps Node alive). */
export function testGpu(): Promise<Gpu> {
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  return (opened ??= Gpu.open());
}
