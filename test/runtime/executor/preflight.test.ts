// The plan's total memory against what the device can give, with the figure and where it comes from.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Plan } from '../../../compiler/plan/types.js';
import { memoryBudget, MiB, parseBytes, planBytes, preflight } from '../../../runtime/executor/preflight.js';

const GiB = 1024 * MiB;
const limits = { maxBufferSize: 4 * GiB, maxStorageBufferBindingSize: 4 * GiB } as unknown as GPUSupportedLimits;

/** A plan of buffers only: 9 buffers of 1 GiB, and two more sharing a 0.3 GiB region. */
function bigPlan(): Plan {
  const buffers = Array.from({ length: 9 }, (_, i) => ({ name: `act${i}`, bytes: GiB, usage: 'activation' }));
  buffers.push({ name: 'r0', bytes: 0.3 * GiB, region: 'shared', offset: 0 } as never, { name: 'r1', bytes: 0.1 * GiB, region: 'shared', offset: 0.2 * GiB } as never);
  return { name: 'big', buffers, kernels: [], programs: {} } as unknown as Plan;
}

test('the plan total counts each region once', () => {
  assert.equal(planBytes(bigPlan()), 9 * GiB + 0.3 * GiB);
});

test('a plan larger than the memory budget is refused with both figures and the source of the budget', () => {
  const plan = bigPlan();
  // Each buffer fits the per-buffer limits, as the 9.3 GiB plan of issue 21 did.
  preflight(plan, limits, new Set(), 'big.moe');
  assert.throws(() => preflight(plan, limits, new Set(), 'big.moe', { bytes: 8 * GiB, source: 'MOEC_DEVICE_MEMORY=8GiB' }), (e: Error & { format?: () => string }) => {
    const text = e.format!();
    assert.match(text, /^big\.moe: error: the plan does not fit this device:\n {2}the plan needs 9523\.2 MiB of device memory in all, but the device can give 8192\.0 MiB \(MOEC_DEVICE_MEMORY=8GiB\)/);
    assert.match(text, /hint: .*MOEC_DEVICE_MEMORY/);
    return true;
  });
  preflight(plan, limits, new Set(), 'big.moe', { bytes: 10 * GiB, source: 'test' });
});

test('the memory budget: MOEC_DEVICE_MEMORY, else available RAM for a software adapter, else none', () => {
  const lavapipe = { software: true, vendor: 'mesa', description: 'llvmpipe (LLVM 15.0.7, 256 bits)' };
  assert.deepEqual(memoryBudget(lavapipe, { MOEC_DEVICE_MEMORY: '24GiB' }), { bytes: 24 * GiB, source: 'MOEC_DEVICE_MEMORY=24GiB' });
  assert.equal(parseBytes('512M'), 512 * MiB);
  assert.equal(parseBytes('1e9'), 1e9);
  assert.equal(parseBytes('lots'), undefined);
  assert.throws(() => memoryBudget(lavapipe, { MOEC_DEVICE_MEMORY: 'lots' }), /MOEC_DEVICE_MEMORY='lots' is not an amount of memory/);
  const soft = memoryBudget(lavapipe, {})!;
  assert.ok(soft.bytes > 64 * MiB, `${soft.bytes}`);
  assert.match(soft.source, /(MemAvailable in \/proc\/meminfo|os\.freemem).*llvmpipe .* keeps GPU buffers in system memory/);
  assert.equal(memoryBudget({ software: false, vendor: 'some-vendor', description: 'a GPU' }, {}), undefined);
});
