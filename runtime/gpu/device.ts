import { create, globals } from 'webgpu';
import { UserError } from '../../grammar/user-error.js';

// The optional features moec can use when an adapter has them.
export const wantedFeatures = ['shader-f16', 'subgroups', 'timestamp-query'] as const;

// Limits raised to the adapter's maximum: large models need big storage bindings and workgroups.
const raisedLimits = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
] as const;

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  description: string;
  device: string;
  backend: string;
  /** A CPU implementation such as lavapipe. */
  software: boolean;
}

export interface OpenOptions {
  /** Part of an adapter name, from `--adapter` or `MOEC_ADAPTER`. */
  adapter?: string;
  /** Extra Dawn toggles, e.g. `enable-dawn-features=allow_unsafe_apis`. */
  dawnFlags?: string[];
}

let globalsInstalled = false;
function installGlobals(): void {
  // GPUBufferUsage, GPUMapMode, ... are used as values; Node has none of its own.
  if (!globalsInstalled) Object.assign(globalThis, globals);
  globalsInstalled = true;
}

/** Lists adapters as Dawn names them, by asking for one that cannot exist (Dawn then lists them all). */
export async function listAdapters(): Promise<string[]> {
  installGlobals();
  try {
    const gpu = create(['adapter=\u0001no-such-adapter']);
    await gpu.requestAdapter();
    return [];
  } catch (err) {
    return parseAdapterList(String((err as Error).message));
  }
}

function parseAdapterList(message: string): string[] {
  return message
    .split('\n')
    .filter((l) => l.trim().startsWith('*'))
    .map((l) => l.trim().slice(1).trim());
}

const noAdapterHint =
  'install a Vulkan driver: `npm run setup` does it, or as root: add bookworm-backports and ' +
  '`apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1` (software GPU, lavapipe)';

/**
 * An open WebGPU device plus what moec needs to know about it. Holds the Dawn instance: if that
 * object is garbage-collected while the device is in use, Dawn crashes in native code.
 */
export class Gpu {
  private lostReason: string | undefined;
  private destroyed = false;

  private constructor(
    private instance: GPU | undefined,
    readonly adapter: GPUAdapter,
    readonly device: GPUDevice,
    readonly info: AdapterSummary,
    readonly features: ReadonlySet<string>,
  ) {
    device.lost.then((lost) => {
      if (this.destroyed) return;
      this.lostReason = `${lost.reason}: ${lost.message}`;
      console.error(
        `error: the GPU device was lost (${this.lostReason}).\n  hint: a driver reset, a GPU hang or memory ` +
          'exhaustion; start the command again (work already written to disk is kept).',
      );
    });
  }

  static async open(opts: OpenOptions = {}): Promise<Gpu> {
    installGlobals();
    const name = opts.adapter ?? process.env.MOEC_ADAPTER;
    const flags = [...(opts.dawnFlags ?? [])];
    if (name) flags.push(`adapter=${name}`);
    let instance: GPU;
    let adapter: GPUAdapter | null;
    try {
      instance = create(flags);
      adapter = await instance.requestAdapter({ powerPreference: 'high-performance' });
    } catch (err) {
      const msg = String((err as Error).message);
      const names = parseAdapterList(msg);
      if (name) {
        const listed = names.length ? names.map((n) => `    ${n}`).join('\n') : '    (none)';
        throw new UserError(`no GPU adapter matches '${name}'; the adapters on this machine are:\n${listed}`, {
          where: opts.adapter ? '--adapter' : 'MOEC_ADAPTER',
          hint: names.length ? 'pass part of one of these names' : noAdapterHint,
        });
      }
      throw new UserError(`no usable GPU adapter (${msg.split('\n')[0]})`, { hint: noAdapterHint });
    }
    if (!adapter) throw new UserError('no usable GPU adapter was found', { hint: noAdapterHint });

    const features = wantedFeatures.filter((f) => adapter!.features.has(f));
    const requiredLimits: Record<string, number> = {};
    for (const l of raisedLimits) requiredLimits[l] = adapter.limits[l];
    const device = await adapter.requestDevice({ requiredFeatures: features as GPUFeatureName[], requiredLimits });
    const ai = adapter.info;
    const info: AdapterSummary = {
      vendor: ai.vendor,
      architecture: ai.architecture,
      description: ai.description,
      device: ai.device,
      backend: (ai as unknown as { backendType?: string }).backendType ?? 'vulkan',
      software: ai.architecture === 'software' || /llvmpipe|swiftshader|lavapipe/i.test(ai.description),
    };
    return new Gpu(instance, adapter, device, info, new Set(features));
  }

  get limits(): GPUSupportedLimits {
    return this.device.limits;
  }

  get hasTimestamps(): boolean {
    return this.features.has('timestamp-query');
  }

  /** Throws a clear error if the device was lost; called before GPU work. */
  checkAlive(): void {
    if (this.lostReason) throw new UserError(`the GPU device was lost (${this.lostReason})`, { hint: 'start the command again' });
  }

  /**
   * Runs `fn` inside validation and out-of-memory error scopes and throws a UserError naming
   * `what` (a kernel, a buffer) if WebGPU reported an error.
   */
  async scoped<T>(what: string, fn: () => T | Promise<T>): Promise<T> {
    this.checkAlive();
    this.device.pushErrorScope('validation');
    this.device.pushErrorScope('out-of-memory');
    let result: T;
    try {
      result = await fn();
    } finally {
      const oom = await this.device.popErrorScope();
      const invalid = await this.device.popErrorScope();
      const err = oom ?? invalid;
      if (err) {
        throw new UserError(`${oom ? 'GPU out of memory' : 'WebGPU validation error'} in ${what}: ${err.message.trim()}`, {
          hint: oom ? 'use a smaller model or batch' : 'this is a bug in the plan or the kernel; please report it',
        });
      }
    }
    return result;
  }

  /** Compiles WGSL; a compile error names the kernel and the WGSL line and column. */
  async compile(kernel: string, code: string): Promise<GPUShaderModule> {
    this.checkAlive();
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ label: kernel, code });
    // Popped before any await: kernels compiling at once must not pop each other's scope.
    const scope = this.device.popErrorScope();
    const info = await module.getCompilationInfo();
    const scopeError = await scope;
    let errors = info.messages.filter((m) => m.type === 'error').map((m) => ({ line: m.lineNum, col: m.linePos, text: m.message }));
    if (!errors.length && scopeError) {
      // Dawn may report a parse error only through the error scope, as ":LINE:COL error: MESSAGE".
      const found = [...scopeError.message.matchAll(/:(\d+):(\d+) error: ([^\n]*)/g)];
      errors = found.length
        ? found.map((f) => ({ line: Number(f[1]), col: Number(f[2]), text: f[3]! }))
        : [{ line: 0, col: 0, text: scopeError.message.trim() }];
    }
    if (errors.length) {
      const lines = code.split('\n');
      const text = errors
        .map((e) => `  ${kernel}.wgsl:${e.line}:${e.col}: ${e.text}\n    ${lines[e.line - 1]?.trim() ?? ''}`)
        .join('\n');
      throw new UserError(`WGSL compile error in kernel '${kernel}':\n${text}`, {
        where: `kernel '${kernel}'`,
        hint: 'the WGSL of a plan comes from `moec compile --emit wgsl`; fix the kernel source or report the bug',
      });
    }
    return module;
  }

  destroy(): void {
    this.destroyed = true;
    this.device.destroy();
    // Drop the instance last; see the class comment.
    this.instance = undefined;
  }

  /** A one-line description for headers: `llvmpipe (mesa, vulkan, software)`. */
  describe(): string {
    const kind = this.info.software ? 'software' : 'hardware';
    const title = this.info.description || this.info.device || this.info.vendor;
    return `${title} (${this.info.vendor}, ${this.info.backend}, ${kind})`;
  }
}
