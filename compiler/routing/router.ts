// What a router kind brings to a sparse MoE layer (compiler/graph/moe.ts builds the rest: pooling,
// dispatch, experts, combine). A router kind either scores experts (writes router logits that the
// shared top-k router kernel, the balance and z-losses and noisy top-k read) or follows a fixed rule
// (writes each token's experts and gates directly, with no logits, no parameters to train from the
// routing and no auxiliary loss). Each kind is one file of this folder, listed in index.ts; the
// settings it cannot take are rules of its file (compiler/rules), registered there too.
import type { MoeConfig, RouterKind } from '../frontend/types.js';
import type { Gpt2Spec } from '../graph/gpt2.js';
import type { Graph } from '../graph/ir.js';
import type { KernelDefinition } from '../kernels/definition.js';
import type { RowKernel } from '../kernels/layernorm.js';
import type { SelectionRule } from '../kernels/moe-router.js';
import type { MoeRouterShape } from '../reference/moe.js';

/** The routing layer a router kind adds its tensors to (`owner`: the layer that routes). */
export interface RouterLayer {
  g: Graph;
  moe: MoeConfig;
  owner: number;
  /** Routing rows R (tokens, or sequences), width C, experts E. */
  rows: number;
  width: number;
  experts: number;
  /** An activation tensor of the owner's routing, h{owner}.moe.{name}. */
  t(name: string, shape: number[]): string;
}

/** The graph ops of a scoring router at one routing layer. */
export interface Scorer {
  /** Ops from the routing input (R×C) to the logits (R×E). */
  forward(g: Graph, l: number, input: string, logits: string): void;
  /**
   * Ops from dlogits back to the input of the router's first linear map; returns that map's output
   * gradient, its weight and its output width, from which the layer adds dW (when trained) and dx.
   */
  backward(g: Graph, l: number, dlogits: string): { dOut: string; W: string; width: number };
}

interface RouterBase {
  kind: RouterKind;
  /** Parameters of one routing layer of width C (0 for a rule). */
  params(width: number, moe: MoeConfig): number;
  /** Kernel generators of its own ops, by op kind (their portable forms; compiler/lower/kernel-table.ts). */
  kernels?: Record<string, (name: string, ...args: never[]) => RowKernel>;
  /** Its own kernels as definitions (compiler/kernels/definition.ts), which its ops bind by name. */
  definitions?: readonly KernelDefinition[];
}

export interface ScoringRouter extends RouterBase {
  scores: true;
  /** Whether its weights are trained (a frozen router's are not; dx still flows through them). */
  trained: boolean;
  /** Declares its parameters and tensors at a routing layer (same names on every call). */
  scorer(L: RouterLayer): Scorer;
}

/** The inputs a fixed rule may read, as the references take them. */
export interface RuleInputs {
  labels?: Uint32Array;
  tokens?: Uint32Array;
  seed?: number;
  step?: number;
}

export interface RuleRouter extends RouterBase {
  scores: false;
  /** The graph input its kernel reads. */
  input: 'rng' | 'labels' | 'tokens';
  /** Declares that input in the graph, if the GPT-2 graph does not always have it. */
  declareInput?(g: Graph, s: Gpt2Spec): void;
  rule: SelectionRule;
  /** Plain TS reference of the rule: sel and gate (N·K each), as the kernel writes them. */
  reference(s: MoeRouterShape, inputs: RuleInputs): { sel: Uint32Array; gate: Float32Array };
}

export type RouterPlugin = ScoringRouter | RuleRouter;
