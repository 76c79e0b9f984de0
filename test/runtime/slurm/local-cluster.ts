// A one-host Slurm cluster for tests: munged, slurmctld and slurmd started as child processes with
// their own key, socket, ports, state and logs in a temp directory, and stopped by pid. Slurm's
// client commands (sbatch, squeue, scontrol) find it through SLURM_CONF in `env`.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir, totalmem } from 'node:os';
import path from 'node:path';

export interface LocalCluster {
  dir: string;
  /** process.env plus SLURM_CONF: pass it to every Slurm command and to moec. */
  env: NodeJS.ProcessEnv;
  partition: string;
  /** Runs a Slurm client command against this cluster; throws with its stderr when it fails. */
  cmd(name: string, args: string[]): string;
  stop(): Promise<void>;
}

/** Why this machine cannot run the cluster (null: it can try); the test states it when it skips. */
export function clusterUnavailable(): string | null {
  for (const bin of ['munged', 'mungekey', 'slurmctld', 'slurmd', 'sbatch', 'squeue', 'scontrol', 'sinfo']) {
    if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) return `'${bin}' is not on PATH (install the Debian packages slurm-wlm and munge)`;
  }
  if (process.getuid?.() !== 0) return 'slurmd must run as root to start jobs, and this test is not root';
  return null;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts the cluster and waits until its node is idle; throws with the daemons' logs if it cannot. */
export async function startLocalCluster(): Promise<LocalCluster> {
  const dir = mkdtempSync(path.join(tmpdir(), 'moec-slurm-'));
  chmodSync(dir, 0o755); // munged wants every directory above its socket searchable by all
  const keyDir = path.join(dir, 'munge-key');
  const runDir = path.join(dir, 'run');
  mkdirSync(keyDir, { mode: 0o700 });
  mkdirSync(runDir, { mode: 0o755 });
  for (const d of ['state', 'spool', 'log']) mkdirSync(path.join(dir, d));
  const key = path.join(keyDir, 'munge.key');
  const mk = spawnSync('mungekey', ['--create', '--bits', '1024', '--keyfile', key], { encoding: 'utf8' });
  if (mk.status !== 0) throw new Error(`mungekey failed: ${mk.stderr}`);
  const socket = path.join(runDir, 'munge.socket');
  const conf = path.join(dir, 'slurm.conf');
  const [ctldPort, dPort] = [await freePort(), await freePort()];
  const memMb = Math.floor((totalmem() / 2 ** 20) * 0.8);
  writeFileSync(path.join(dir, 'plugstack.conf'), '');
  writeFileSync(conf, [
    'ClusterName=moectest',
    'SlurmctldHost=localhost(127.0.0.1)',
    `SlurmctldPort=${ctldPort}`,
    `SlurmdPort=${dPort}`,
    'SlurmUser=root',
    'SlurmdUser=root',
    'AuthType=auth/munge',
    'CredType=cred/munge',
    `AuthInfo=socket=${socket}`,
    `StateSaveLocation=${dir}/state`,
    `SlurmdSpoolDir=${dir}/spool`,
    `SlurmctldPidFile=${runDir}/slurmctld.pid`,
    `SlurmdPidFile=${runDir}/slurmd.pid`,
    `SlurmctldLogFile=${dir}/log/slurmctld.log`,
    `SlurmdLogFile=${dir}/log/slurmd.log`,
    `PlugStackConfig=${dir}/plugstack.conf`,
    'ProctrackType=proctrack/linuxproc',
    'TaskPlugin=task/none',
    'SwitchType=switch/none',
    'MpiDefault=none',
    'ReturnToService=2',
    'SchedulerType=sched/backfill',
    'SelectType=select/cons_tres',
    'SelectTypeParameters=CR_Core',
    'AccountingStorageType=accounting_storage/none',
    'JobCompType=jobcomp/none',
    'JobAcctGatherType=jobacct_gather/none',
    // A task signalled by scancel/requeue gets this long to checkpoint before SIGKILL.
    'KillWait=20',
    'MinJobAge=600',
    `NodeName=localhost NodeAddr=127.0.0.1 CPUs=${cpus().length} RealMemory=${memMb} State=UNKNOWN`,
    'PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP',
    '',
  ].join('\n'));
  const env = { ...process.env, SLURM_CONF: conf };
  const children: ChildProcess[] = [];
  const start = (bin: string, args: string[], log: string) => {
    const c = spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    c.stdout!.on('data', (b: Buffer) => out.push(b));
    c.stderr!.on('data', (b: Buffer) => out.push(b));
    c.on('exit', () => writeFileSync(path.join(dir, 'log', log), Buffer.concat(out)));
    children.push(c);
    return () => Buffer.concat(out).toString('utf8');
  };
  const cmd = (name: string, args: string[]) => {
    const r = spawnSync(name, args, { env, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${name} ${args.join(' ')}: ${r.stderr || r.stdout}`);
    return r.stdout;
  };
  const stop = async () => {
    spawnSync('scancel', ['--me', '--full'], { env });
    // Wait for the jobs' processes to end (they got SIGTERM; KillWait bounds it) before the daemons go.
    for (let i = 0; i < 60; i++) {
      const q = spawnSync('squeue', ['-h', '-o', '%i'], { env, encoding: 'utf8' });
      if (q.status !== 0 || !q.stdout.trim()) break;
      await sleep(500);
    }
    for (const c of children.reverse()) {
      if (c.exitCode !== null || c.signalCode !== null) continue;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await Promise.race([exited, sleep(10_000).then(() => c.kill('SIGKILL'))]);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const munged = start('munged', ['--foreground', '--force', `--key-file=${key}`, `--socket=${socket}`, `--pid-file=${runDir}/munged.pid`, `--log-file=${dir}/log/munged.log`, `--seed-file=${keyDir}/seed`], 'munged.out');
    for (let i = 0; !existsSync(socket); i++) {
      if (i > 50) throw new Error(`munged did not create its socket:\n${munged()}`);
      await sleep(100);
    }
    const ctld = start('slurmctld', ['-D', '-f', conf], 'slurmctld.out');
    const slurmd = start('slurmd', ['-D', '-N', 'localhost', '-f', conf], 'slurmd.out');
    for (let i = 0; ; i++) {
      const s = spawnSync('sinfo', ['-h', '-o', '%T'], { env, encoding: 'utf8' });
      if (s.status === 0 && s.stdout.trim() === 'idle') break;
      if (i > 60 || children.some((c) => c.exitCode !== null)) {
        const logs = ['slurmctld.log', 'slurmd.log'].map((f) => path.join(dir, 'log', f)).filter(existsSync).map((f) => readFileSync(f, 'utf8').slice(-2000));
        throw new Error(`the node did not become idle (sinfo: ${s.stdout.trim() || s.stderr.trim()})\nslurmctld:\n${ctld()}\nslurmd:\n${slurmd()}\n${logs.join('\n')}`);
      }
      await sleep(500);
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { dir, env, partition: 'debug', cmd, stop };
}
