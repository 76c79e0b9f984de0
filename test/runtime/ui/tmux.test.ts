// The demo in a real terminal: tmux runs it in a 120×40 pane, and we read the screen back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const demo = fileURLToPath(new URL('../../../runtime/ui/demo.js', import.meta.url));
// A private server socket, so the test never touches the user's tmux sessions.
const socket = `moec-ui-test-${process.pid}`;
const tmux = (...args: string[]) => spawnSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
const hasTmux = spawnSync('tmux', ['-V'], { encoding: 'utf8' }).status === 0;

const screen = (history = false) => tmux('capture-pane', '-p', '-t', 'ui', ...(history ? ['-S', '-'] : [])).stdout;

async function waitFor(what: string, ok: (text: string) => boolean, history = false): Promise<string> {
  const deadline = Date.now() + 15_000;
  let text = '';
  while (Date.now() < deadline) {
    text = screen(history);
    if (ok(text)) return text;
    await sleep(50);
  }
  assert.fail(`timed out waiting for ${what}; the pane shows:\n${text}`);
}

test(
  'the demo sweep in a real terminal: live table and heat map while running, one line per trial after',
  { skip: hasTmux ? false : 'tmux is not installed (npm run setup installs it where it may use apt)', timeout: 30_000 },
  async () => {
    // CI variables make Ink print only the last frame; the pane is a real terminal, so drop them.
    const command = `env -u CI -u CONTINUOUS_INTEGRATION node ${JSON.stringify(demo)} --trials 30 --steps 12 --delay-ms 5 --concurrency 2; echo DEMO-EXIT=$?; sleep 60`;
    const started = tmux('new-session', '-d', '-s', 'ui', '-x', '120', '-y', '40', command);
    assert.equal(started.status, 0, started.stderr);
    try {
      const live = await waitFor('a running trial with its heat map', (t) => /^▶ unit=/m.test(t) && /^ {2}L0 │/m.test(t) && /^✔ \[/m.test(t));
      const lines = live.split('\n');
      assert.equal(lines.filter((l) => l.startsWith('moec  sweep demo · synthetic (no GPU) · out runs/demo')).length, 1, live);
      assert.equal(lines.filter((l) => /^trials \d+\/30 finished · \d+ done · [12] running · \d+ failed( · \d+ pending)? · elapsed \d+s( · sweep ETA \S+)?$/.test(l)).length, 1, live);
      assert.equal(lines.filter((l) => /^ {2}trial +progress +step +loss +val ppl +tok\/s +ETA$/.test(l)).length, 1, live);
      assert.ok(lines.some((l) => /^▶ unit=\S+ top=\d experts=\d+ seed=\d +[█▏▎▍▌▋▊▉░]+ +\d+\/12 /.test(l)), live);
      assert.ok(lines.some((l) => l.startsWith('  loss ') && /[▁▂▃▄▅▆▇█]/.test(l)), live);
      assert.ok(lines.some((l) => l.startsWith('  load per expert: ')), live);
      // Finished trials sit above the header, as static lines.
      const header = lines.findIndex((l) => l.startsWith('moec  sweep demo'));
      assert.ok(lines.slice(0, header).every((l) => /^[✔✘] \[ ?\d+\/30\] /.test(l) || l === ''), live);

      const all = await waitFor('the demo to exit', (t) => t.includes('DEMO-EXIT='), true);
      assert.ok(all.includes('DEMO-EXIT=0'), all);
      const history = all.split('\n');
      // Everything the terminal ever scrolled: each trial once, one header, nothing left of the live table.
      for (let i = 1; i <= 30; i++) {
        const tag = `[${String(i).padStart(2)}/30] `;
        assert.equal(history.filter((l) => l.includes(tag)).length, 1, `trial ${i}:\n${all}`);
      }
      assert.equal(history.filter((l) => l.startsWith('moec  sweep demo')).length, 1, all);
      assert.ok(history.some((l) => /^trials 30\/30 finished · 29 done · 0 running · 1 failed · elapsed \d+s$/.test(l)), all);
      assert.ok(!history.some((l) => l.startsWith('▶ ') || l.startsWith('· ')), all);
      assert.ok(history.some((l) => /^✘ \[17\/30\] .* failed at 5\/12, wall 3s: trial t017: loss is NaN at step 6$/.test(l)), all);
    } finally {
      tmux('kill-server');
    }
  },
);
