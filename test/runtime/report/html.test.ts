// report.html in a real browser: Debian's Chromium, driven over the DevTools protocol by
// playwright-core (no browser download). Every figure must render with no console error or page
// error, no request may leave the file, and hovering a point must show its value in a tooltip.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { writeReport } from '../../../runtime/report/report.js';
import { writeFakeSweep } from '../store/fake-sweep.js';

const CHROMIUM = process.env.MOEC_CHROMIUM ?? '/usr/bin/chromium';

test('report.html renders every figure in Chromium, offline, with values on hover', { skip: existsSync(CHROMIUM) ? false : `no browser at ${CHROMIUM} (apt-get install chromium)`, timeout: 120_000 }, async () => {
  const store = writeFakeSweep();
  const r = await writeReport(store.dir);
  const html = readFileSync(r.files.html, 'utf8');
  // Self-contained: no script, stylesheet or image fetched from anywhere.
  assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+href=|<img[^>]+src="http/);
  assert.match(html, /Sweep configuration/);

  let browser: Browser | undefined;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
    const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
    const problems: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`); });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('request', (q) => { if (!q.url().startsWith('file:')) requests.push(q.url()); });
    await page.goto(`file://${r.files.html}`);
    const figures = await page.evaluate(async () => (await (globalThis as unknown as { moecFigures: Promise<unknown[]> }).moecFigures).length);
    // The perplexity curves, 3 heat maps and 3 load charts, as report.md has them.
    assert.equal(figures, r.files.figures.length / 2);
    const drawn = await page.$$eval('.figure svg', (svgs) => svgs.map((s) => s.querySelectorAll('path, rect, text').length));
    assert.equal(drawn.length, figures);
    for (const [i, n] of drawn.entries()) assert.ok(n > 20, `figure ${i} drew ${n} marks`);
    assert.deepEqual(problems, []);
    assert.deepEqual(requests, []);

    // Hover the first point of the perplexity chart: the tooltip names the configuration and the value.
    const point = page.locator('#fig-0 .mark-symbol path').first();
    await point.hover({ force: true });
    const tip = page.locator('#vg-tooltip-element');
    await tip.waitFor({ state: 'visible', timeout: 10_000 });
    const text = await tip.innerText();
    assert.match(text, /perplexity \(mean\)\s+\d+\.\d\d/);
    assert.match(text, /configuration\s+top=\d/);
    // top=1 seed 1 and 2 at step 10: 10 + 2s + 3 -> mean 16.00.
    assert.match(text, /16\.00|26\.00|35\.00/);
    if (process.env.MOEC_SCREENSHOT) await page.screenshot({ path: process.env.MOEC_SCREENSHOT, fullPage: false });
  } finally {
    await browser?.close();
  }
});
