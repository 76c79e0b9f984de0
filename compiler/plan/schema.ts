import { Ajv, type ErrorObject } from 'ajv';
import type { Plan } from './types.js';
import { UserError } from '../../grammar/user-error.js';

const name = { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_.\\-/]*$' } as const;
const size3 = { type: 'array', items: { type: 'integer', minimum: 1 }, minItems: 3, maxItems: 3 } as const;

/** JSON Schema of a Plan; the executor refuses anything that fails it before any GPU work. */
export const planSchema = {
  $id: 'moec/plan',
  type: 'object',
  additionalProperties: false,
  required: ['version', 'name', 'buffers', 'kernels', 'programs'],
  properties: {
    version: { const: 1 },
    name: { type: 'string' },
    buffers: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'bytes', 'role'],
        properties: {
          name,
          bytes: { type: 'integer', minimum: 4, multipleOf: 4 },
          role: { enum: ['param', 'grad', 'optimizer', 'activation', 'input', 'uniform', 'output'] },
          region: name,
          offset: { type: 'integer', minimum: 0 },
        },
        dependencies: { region: ['offset'], offset: ['region'] },
      },
    },
    kernels: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'wgsl', 'entryPoint', 'workgroupSize', 'bindings'],
        properties: {
          name,
          wgsl: { type: 'string', minLength: 1 },
          entryPoint: { type: 'string', minLength: 1 },
          workgroupSize: size3,
          bindings: {
            type: 'array',
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['binding', 'name', 'type'],
              properties: {
                binding: { type: 'integer', minimum: 0 },
                name: { type: 'string' },
                type: { enum: ['storage', 'read-only-storage', 'uniform'] },
              },
            },
          },
          features: { type: 'array', items: { type: 'string' } },
          flops: { type: 'number', minimum: 0 },
          bytes: { type: 'number', minimum: 0 },
        },
      },
    },
    programs: {
      type: 'object',
      additionalProperties: {
        type: 'array',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['kernel', 'buffers', 'workgroups'],
          properties: {
            kernel: name,
            buffers: { type: 'array', items: name },
            workgroups: size3,
            label: { type: 'string' },
          },
        },
      },
    },
  },
} as const;

const ajv = new Ajv({ allErrors: true });
const validateShape = ajv.compile(planSchema);

function describe(e: ErrorObject): string {
  const at = e.instancePath || '(root)';
  if (e.keyword === 'additionalProperties') return `${at}: unknown field '${(e.params as { additionalProperty: string }).additionalProperty}'`;
  if (e.keyword === 'enum') return `${at} ${e.message}: ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
  return `${at} ${e.message}`;
}

/**
 * Checks a Plan's shape (JSON Schema) and its internal references (every dispatch names a kernel
 * and buffers that exist, with the right count, and every aliased buffer fits its region's
 * alignment). Returns the problems found; empty means valid.
 */
export function planProblems(plan: unknown): string[] {
  if (!validateShape(plan)) return (validateShape.errors ?? []).map(describe);
  const p = plan as Plan;
  const problems: string[] = [];
  const buffers = new Map(p.buffers.map((b) => [b.name, b]));
  const kernels = new Map(p.kernels.map((k) => [k.name, k]));
  if (buffers.size !== p.buffers.length) problems.push('/buffers: duplicate buffer names');
  if (kernels.size !== p.kernels.length) problems.push('/kernels: duplicate kernel names');
  for (const b of p.buffers) {
    if (b.offset !== undefined && b.offset % 256 !== 0) {
      problems.push(`/buffers/${b.name}: offset ${b.offset} is not a multiple of 256 (storage binding alignment)`);
    }
  }
  for (const k of p.kernels) {
    k.bindings.forEach((bnd, i) => {
      if (bnd.binding !== i) problems.push(`/kernels/${k.name}: binding ${i} is numbered ${bnd.binding}; bindings must be 0..n-1 in order`);
    });
  }
  for (const [prog, list] of Object.entries(p.programs)) {
    list.forEach((d, i) => {
      const at = `/programs/${prog}/${i}`;
      const k = kernels.get(d.kernel);
      if (!k) {
        problems.push(`${at}: unknown kernel '${d.kernel}'`);
        return;
      }
      if (d.buffers.length !== k.bindings.length) {
        problems.push(`${at}: kernel '${k.name}' has ${k.bindings.length} bindings but ${d.buffers.length} buffers are given`);
      }
      d.buffers.forEach((bn, j) => {
        const b = buffers.get(bn);
        if (!b) problems.push(`${at}: unknown buffer '${bn}'`);
        else if (k.bindings[j]?.type === 'uniform' && b.role !== 'uniform') {
          problems.push(`${at}: binding '${k.bindings[j]!.name}' is a uniform but buffer '${bn}' has role '${b.role}'`);
        }
      });
    });
  }
  return problems;
}

/** Throws a UserError listing every problem when `plan` is not a valid Plan. */
export function assertValidPlan(plan: unknown, source = 'plan'): asserts plan is Plan {
  const problems = planProblems(plan);
  if (problems.length) {
    const shown = problems.slice(0, 20).map((s) => `  ${s}`).join('\n');
    const more = problems.length > 20 ? `\n  ... and ${problems.length - 20} more` : '';
    throw new UserError(`invalid plan (${problems.length} problem${problems.length > 1 ? 's' : ''}):\n${shown}${more}`, {
      where: source,
      hint: 'plans are produced by `moec compile`; a hand-edited plan must match the schema in compiler/plan/schema.ts',
    });
  }
}
