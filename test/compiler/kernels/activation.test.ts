import assert from 'node:assert/strict';
import { test } from 'node:test';
import { activationGradWgsl, activationWgsl, applyActivation, applyActivationGrad, gelu, geluGrad, geluWgsl } from '../../../compiler/kernels/activation.js';
import { activationGrad, activate } from '../../../compiler/reference/moe.js';
import { geluBackwardReference } from '../../../compiler/reference/elementwise.js';

const xs = [-9.5, -3, -1.25, -0.3, 0, 0.07, 0.5, 1, 2.75, 8];

test('gelu matches its known values and its derivative matches a central difference', () => {
  assert.equal(gelu(0), 0);
  assert.ok(Math.abs(gelu(1) - 0.8411919906082768) < 1e-12);
  for (const x of xs) {
    const h = 1e-5;
    const fd = (gelu(x + h) - gelu(x - h)) / (2 * h);
    assert.ok(Math.abs(geluGrad(x) - fd) < 1e-7, `x=${x}: ${geluGrad(x)} vs ${fd}`);
  }
});

test('every TS reference site uses the one gelu', () => {
  for (const x of xs) {
    assert.equal(applyActivation('gelu', x), gelu(x));
    assert.equal(applyActivationGrad('gelu', x), geluGrad(x));
    assert.equal(activate('gelu', x), gelu(x));
    assert.equal(activationGrad('gelu', x), geluGrad(x));
  }
  const h = Float32Array.from(xs);
  const d = Float32Array.from(xs, (_, i) => i + 1);
  assert.deepEqual(geluBackwardReference(h, d), Float32Array.from(xs, (x, i) => (i + 1) * geluGrad(x)));
});

test('the WGSL helper functions are built from the one gelu statement set', () => {
  assert.ok(activationWgsl.includes(geluWgsl.c) && activationWgsl.includes(`return ${geluWgsl.value};`));
  for (const l of geluWgsl.gradLines) assert.ok(activationGradWgsl.includes(l));
  assert.ok(activationGradWgsl.includes(`return ${geluWgsl.grad};`));
});
