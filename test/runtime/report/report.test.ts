import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { writeReport } from '../../../runtime/report/report.js';
import { fakeCount, fakePpl, fakeTokensPerSec, writeFakeSweep } from '../store/fake-sweep.js';

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const close = (a: number | null, b: number, msg: string) => assert.ok(a !== null && Math.abs(a - b) < 1e-9, `${msg}: ${a} != ${b}`);

test('report: table numbers, honest about seeds and failures, with SVG and PNG figures', async () => {
  const store = writeFakeSweep();
  const r = await writeReport(store.dir);

  assert.deepEqual(r.groups.map((g) => g.config), ['top=1', 'top=2', 'top=3']);
  for (const k of [1, 2]) {
    const g = r.groups.find((x) => x.config === `top=${k}`)!;
    assert.equal(g.done, 2);
    // seeds 1 and 2: last ppl 10k+2 and 10k+4; the mean of the last 2 evals adds 0.5.
    close(g.ppl_last.mean, 10 * k + 3, 'ppl last mean');
    close(g.ppl_last.std, Math.SQRT2, 'ppl last std');
    close(g.ppl_avg.mean, 10 * k + 3.5, 'ppl avg mean');
    close(g.ppl_avg.std, Math.SQRT2, 'ppl avg std');
    close(g.tokens_per_s.mean, fakeTokensPerSec(k, 1.5), 'tokens/s');
  }
  const g3 = r.groups.find((x) => x.config === 'top=3')!;
  assert.equal(g3.failed, 1);
  assert.equal(g3.done, 1);
  close(g3.ppl_last.mean, fakePpl(3, 1, 40), 'failed seed left out');
  assert.equal(g3.ppl_last.std, null);
  const failed = r.trials.find((t) => t.status === 'failed')!;
  assert.equal(failed.step, 20);
  close(failed.ppl_last, fakePpl(3, 2, 20), 'failed trial keeps its last eval');

  const md = readFileSync(r.files.markdown, 'utf8');
  assert.match(md, /6 trials in 3 configurations, 2 seeds each: 5 done, 1 failed, 0 not finished/);
  assert.match(md, /\| top=1 \| 1 \| 2\/2 \| 13\.00 ± 1\.41 \(n=2\) \| 13\.50 ± 1\.41 \(n=2\) \|/);
  assert.match(md, /\| top=3 \| 3 \| 1\/2 \(1 failed\) \| 32\.00 \(n=1\) \|/);
  assert.match(md, /\*\*failed\*\* at step 20\/40: GPU device lost: out of memory/);

  const csv = readFileSync(r.files.csv, 'utf8').trim().split('\r\n');
  assert.equal(csv[0]!.split(',').slice(0, 3).join(','), 'configuration,model.moe.top,seeds');
  assert.equal(csv.length, 4);
  assert.equal(Number(csv[1]!.split(',')[6]), 13);
  const json = JSON.parse(readFileSync(r.files.json, 'utf8'));
  assert.equal(json.trials.length, 6);
  assert.equal(json.configurations[0].ppl_avg.mean, 13.5);

  // 1 perplexity chart + 2 forest plots (perplexity, specialisation) + 3 configs × 1 (data, label)
  // heat map + 3 load charts, each as SVG and PNG.
  assert.equal(r.files.figures.length, 18);
  for (const f of r.files.figures) {
    assert.match(md, new RegExp(path.basename(f).replace(/[.]/g, '\\.')), `${f} linked from report.md`);
    const bytes = readFileSync(f);
    if (f.endsWith('.png')) {
      assert.deepEqual(bytes.subarray(0, 8), PNG, `${f} is a PNG`);
      const w = bytes.readUInt32BE(16);
      const h = bytes.readUInt32BE(20);
      assert.ok(w >= 300 && w <= 4000 && h >= 150 && h <= 4000, `${f}: ${w}×${h}`);
      assert.ok(statSync(f).size > 5000, `${f} has content`);
    } else {
      assert.match(bytes.toString('utf8', 0, 200), /^<svg/);
      assert.match(bytes.toString('utf8'), /<text/);
    }
  }
  const heat = readFileSync(r.files.figures.find((f) => /experts-1-top.1.*\.svg$/.test(f))!, 'utf8');
  // layer 0, English: expert 0 gets 60+40 of (60+40) + 3*(10+40) = 100/250.
  assert.equal(fakeCount(0, 0, 0, 40), 100);
  assert.match(heat, />0\.40</);
  assert.match(heat, /MoE layer 1/);
  const heat3 = readFileSync(r.files.figures.find((f) => /experts-3-top.3.*\.svg$/.test(f))!, 'utf8');
  assert.match(heat3, /last evaluation \(step 40\), one seed</, 'the failed seed is left out of the heat map');
});
