import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { cacheRootAndWhy } from '../../data/cache.js';
import type { MatmulShape } from '../../../compiler/kernels/matmul.js';
import { listAdapters } from '../../gpu/device.js';
import { checkMatmul, measureMatmul } from '../../bench/matmul.js';
import { fmtBytes } from '../../executor/preflight.js';
import type { Command } from '../command.js';
import { adapterOption, openGpu } from '../adapter-flag.js';

// Odd shapes on purpose: edges, non-multiples of 4, transposes, bias + GELU, batches.
const selfTestShapes: MatmulShape[] = [
  { m: 1, n: 1, k: 1 },
  { m: 17, n: 33, k: 65 },
  { m: 129, n: 255, k: 63, transB: true },
  { m: 64, n: 48, k: 96, transA: true, bias: true, activation: 'gelu' },
  { m: 31, n: 20, k: 12, batch: 3, broadcastB: true, accumulate: true },
];
const tolerance = 1e-4;

const shownLimits = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
] as const;

/** Where the data cache is (before the GPU, so it is said even when no adapter opens). */
function printCache(): void {
  const { dir, from } = cacheRootAndWhy();
  console.log(`cache     ${dir} (from ${from}; set MOEC_CACHE to move it)${existsSync(dir) ? '' : ', not created yet'}`);
  const old = path.resolve('.moec-cache');
  if (old !== dir && existsSync(old)) console.log(`          note: ${old} is a cache of an older moec, no longer used: move it to ${dir}, or set MOEC_CACHE=${old}`);
}

export const doctorCommand: Command = {
  name: 'doctor',
  summary: 'show the GPU adapter, its features and limits, and self-test the kernels',
  usage: `usage: moec doctor [--adapter NAME] [--quick] [--probe]

Prints where the data cache is, the adapter moec will use (prefers a hardware GPU; choose with --adapter or MOEC_ADAPTER),
its features and limits, then runs the matmul kernel against the CPU reference on odd shapes and
reports GFLOP/s at 512x512x512. Exit status 1 if any check fails.
  --adapter NAME  part of an adapter name (see the list printed when none matches)
  --quick         skip the GFLOP/s measurement
  --probe         only check that an adapter opens (exit 0) or not (exit 1); used by setup`,
  async run(argv) {
    const { values } = parseArgs({ args: argv, options: { ...adapterOption, quick: { type: 'boolean' }, probe: { type: 'boolean' } } });
    if (!values.probe) printCache();
    const gpu = await openGpu(values);
    if (values.probe) {
      console.log(gpu.describe());
      gpu.destroy();
      return 0;
    }
    try {
      const adapters = await listAdapters();
      console.log(`adapter   ${gpu.describe()}`);
      console.log(`          vendor=${gpu.info.vendor} architecture=${gpu.info.architecture} device=${gpu.info.device}`);
      if (adapters.length > 1) console.log(`available ${adapters.join('\n          ')}`);
      const want = ['shader-f16', 'subgroups', 'timestamp-query'];
      console.log(`features  ${want.map((f) => `${f}:${gpu.features.has(f) ? 'yes' : 'no'}`).join('  ')}`);
      console.log('limits');
      for (const l of shownLimits) {
        const v = gpu.limits[l];
        console.log(`  ${l.padEnd(36)} ${l.endsWith('Size') && v > 65536 ? fmtBytes(v) : v}`);
      }
      console.log('self-test (matmul vs CPU reference)');
      let failed = 0;
      for (const s of selfTestShapes) {
        const err = await checkMatmul(gpu, s);
        const ok = err <= tolerance;
        if (!ok) failed++;
        const flags = [s.transA && 'Aᵀ', s.transB && 'Bᵀ', s.bias && 'bias', s.activation, s.batch && `batch ${s.batch}`, s.accumulate && '+=']
          .filter(Boolean)
          .join(' ');
        console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${`${s.m}x${s.n}x${s.k}`.padEnd(12)} ${flags.padEnd(22)} max rel error ${err.toExponential(1)}`);
      }
      if (!values.quick) {
        const rate = await measureMatmul(gpu, { m: 512, n: 512, k: 512 });
        console.log(`matmul    512x512x512: ${rate.gflops.toFixed(1)} GFLOP/s (${rate.msPerCall.toFixed(2)} ms)`);
      }
      console.log(failed ? `doctor: ${failed} self-test(s) FAILED` : 'doctor: all checks passed');
      return failed ? 1 : 0;
    } finally {
      gpu.destroy();
    }
  },
};
