import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kernelTable } from '../../../compiler/lower/kernel-table.js';
import { KernelCache } from '../../../compiler/lower/kernels.js';
import { formConditions, formFor, loweringNames, subgroupFormsSuit, targetFor } from '../../../compiler/lower/target.js';
import { fillKernel } from '../../../compiler/kernels/elementwise.js';
import { routers } from '../../../compiler/routing/index.js';

const subgroups = new Set(['subgroups']);
const lavapipe = { features: subgroups, subgroupMinSize: 8, software: true };
const gpu = { features: subgroups, subgroupMinSize: 32, software: false };
const mm = { kind: 'matmul', args: [{ m: 5, n: 7, k: 3 }] };

test('the subgroup forms suit a software adapter with subgroups of at least 8, and not a hardware one (never measured there)', () => {
  assert.deepEqual(subgroupFormsSuit(lavapipe).suits, true);
  const hw = subgroupFormsSuit(gpu);
  assert.equal(hw.suits, false);
  assert.match(hw.why, /hardware adapter: the subgroup forms were measured faster on lavapipe only/);
  assert.match(subgroupFormsSuit({ ...lavapipe, subgroupMinSize: 4 }).why, /narrower than 8 \(minimum 4\)/);
  assert.match(subgroupFormsSuit({ ...lavapipe, subgroupMinSize: undefined }).why, /minimum not reported/);
  assert.match(subgroupFormsSuit({ ...lavapipe, features: new Set() }).why, /no 'subgroups' feature/);
});

test('the target for an adapter carries it and chooses the forms by the stated conditions', () => {
  const soft = targetFor(lavapipe);
  const hard = targetFor(gpu);
  assert.equal(soft.adapter, lavapipe);
  assert.equal(soft.subgroupMatmul, true);
  assert.equal(hard.subgroupMatmul, false);
  assert.deepEqual(loweringNames(soft), ['subgroupMatmul']);
  assert.deepEqual(loweringNames(hard), []);
  assert.equal(formConditions.subgroup.applies(hard), false);
  assert.equal(formFor('matmul', hard).form, 'portable');
  assert.equal(formFor('matmul', soft).form, 'subgroup');
  assert.deepEqual(new KernelCache(soft).get(mm).features, ['subgroups']);
  assert.equal(new KernelCache(hard).get(mm).features, undefined);
  // A kind without a subgroup form lowers portably on any target; an unknown kind is an error.
  assert.equal(formFor('fill', soft).form, 'portable');
  assert.throws(() => formFor('no_such_kernel', soft), /no kernel for op kind 'no_such_kernel'/);
});

test("a target's own forms replace the table's for their kinds only (benches comparing forms)", () => {
  const plain = (n: string, count: number) => fillKernel(n, count);
  const t = { ...targetFor(lavapipe), kernels: { matmul: { subgroup: kernelTable.matmul!.portable } , fill: { portable: plain } } };
  assert.equal(formFor('matmul', t).generate, kernelTable.matmul!.portable);
  assert.equal(formFor('fill', t).generate, plain);
  assert.equal(new KernelCache(t).get(mm).features, undefined, 'the bench form replaced the subgroup matmul');
  assert.equal(formFor('attn_fwd', t).generate, kernelTable.attn_fwd!.subgroup, 'other kinds keep the table forms');
  // The table itself is untouched: no registration leaks out of a target.
  assert.deepEqual(new KernelCache(targetFor(lavapipe)).get(mm).features, ['subgroups']);
});

test('the kernel table is static: every router plug-in kernel is in it without importing the graph builders', () => {
  for (const r of Object.values(routers)) {
    for (const kind of [...Object.keys(r.kernels ?? {}), ...(r.definitions ?? []).map((d) => d.kind)]) assert.ok(kernelTable[kind]?.portable, `${r.kind}: ${kind}`);
  }
  for (const kind of ['moe_router_fwd', 'moe_dispatch', 'moe_gmm', 'moe_soft_weights', 'patch_fwd', 'sgd', 'cast_f16']) assert.ok(kernelTable[kind]?.portable, kind);
  assert.ok(kernelTable.moe_gmm!.subgroup && kernelTable.moe_wgrad!.subgroup && kernelTable.attn_fwd!.subgroup);
});
