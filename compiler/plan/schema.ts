import { Ajv, type ErrorObject } from 'ajv';
import { type Plan, type PlanInterface, PLAN_VERSION } from './types.js';
import { UserError } from '../../errors/user-error.js';

const name = { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_.\\-/]*$' } as const;
const names = { type: 'array', items: name } as const;
const obj = (required: string[], properties: Record<string, unknown>) => ({ type: 'object', additionalProperties: false, required, properties }) as const;
const count = { type: 'integer', minimum: 0 } as const;

/** JSON Schema of a Plan's interface (PlanInterface in types.ts). */
const planInterfaceSchema = obj(['regions', 'views', 'optimizer', 'inputs', 'outputs', 'stats', 'state', 'internal'], {
  regions: { type: 'array', minItems: 1, items: obj(['start', 'floats', 'params', 'grads'], { start: count, floats: count, params: name, grads: name, m: name, v: name, params16: name }) },
  views: obj(['params', 'grads', 'params16', 'rows'], { params: names, grads: names, params16: names, rows: names }),
  optimizer: obj(['step'], { step: name, routerStep: name }),
  inputs: obj([], { tokens: name, targets: name, labels: name, rng: name, x: name, y: name, cluster: name }),
  outputs: obj(['loss', 'eval'], { loss: name, eval: name, logits: name }),
  stats: {
    type: 'array',
    items: obj(['layer', 'experts', 'buffer', 'scalars', 'perExpert', 'selPerToken'], {
      layer: count, experts: { type: 'integer', minimum: 1 }, buffer: name, sel: name,
      scalars: { type: 'object', additionalProperties: count }, perExpert: { type: 'object', additionalProperties: count },
      selPerToken: { anyOf: [{ type: 'integer', minimum: 1 }, { type: 'null' }] },
    }),
  },
  state: { type: 'array', items: obj(['name', 'buffer'], { name: { type: 'string', minLength: 1 }, buffer: name }) },
  internal: names,
});

/** Every buffer an interface names, with where it names it (e.g. 'regions/0/params', 'inputs/tokens'). */
export function interfaceBuffers(io: PlanInterface): [where: string, buffer: string][] {
  const out: [string, string][] = [];
  io.regions.forEach((r, k) => {
    for (const f of ['params', 'grads', 'm', 'v', 'params16'] as const) if (r[f] !== undefined) out.push([`regions/${k}/${f}`, r[f]]);
  });
  for (const [f, list] of Object.entries(io.views)) list.forEach((b) => out.push([`views/${f}`, b]));
  for (const group of ['optimizer', 'inputs', 'outputs'] as const) {
    for (const [f, b] of Object.entries(io[group])) if (b !== undefined) out.push([`${group}/${f}`, b]);
  }
  io.stats.forEach((s, i) => {
    out.push([`stats/${i}/buffer`, s.buffer]);
    if (s.sel !== undefined) out.push([`stats/${i}/sel`, s.sel]);
  });
  io.state.forEach((s, i) => out.push([`state/${i}`, s.buffer]));
  io.internal.forEach((b) => out.push(['internal', b]));
  return out;
}

const size3 = { type: 'array', items: { type: 'integer', minimum: 1 }, minItems: 3, maxItems: 3 } as const;

/** JSON Schema of a Plan; the executor refuses anything that fails it before any GPU work. */
export const planSchema = {
  $id: 'moec/plan',
  type: 'object',
  additionalProperties: false,
  required: ['version', 'name', 'buffers', 'kernels', 'programs'],
  properties: {
    version: { const: PLAN_VERSION },
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
    interface: planInterfaceSchema,
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
  if (p.interface) {
    const named = new Map<string, string>();
    for (const [where, bn] of interfaceBuffers(p.interface)) {
      if (!buffers.has(bn)) problems.push(`/interface/${where}: unknown buffer '${bn}'`);
      else if (named.has(bn)) problems.push(`/interface/${where}: buffer '${bn}' is also /interface/${named.get(bn)}`);
      named.set(bn, where);
    }
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
