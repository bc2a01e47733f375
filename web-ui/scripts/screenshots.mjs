#!/usr/bin/env node
// Screenshots of every console page, in English and Chinese, at 1280×720
// and 1920×1080, through Debian's chromium driven by playwright-core.
//
//   CAIRN_URL=https://127.0.0.1:20443 CAIRN_USER=admin CAIRN_PASSWORD=... \
//     node scripts/screenshots.mjs [OUT_DIR]
//
// CAIRN_URL is a vault serving the built console (`cairn-vault serve --http`)
// or the Vite dev server; the vault's own certificate is accepted. Pages are
// written as OUT_DIR/<lang>-<width>x<height>-<page>.png (default OUT_DIR:
// web-ui/screenshots, which git ignores). CHROMIUM overrides the browser
// path (default /usr/bin/chromium); PAGES (comma-separated) and SIZES
// ("1280x720,1920x1080") narrow the set.
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const base = (process.env.CAIRN_URL ?? 'https://127.0.0.1:20443').replace(/\/$/, '');
const user = process.env.CAIRN_USER ?? 'admin';
const password = process.env.CAIRN_PASSWORD ?? '';
const out = resolve(process.argv[2] ?? join(here, '..', 'screenshots'));
const pages = (process.env.PAGES ?? 'login,overview,departments,policies,jobs,snapshots,dr,compliance,audit,users')
  .split(',')
  .filter(Boolean);
const sizes = (process.env.SIZES ?? '1280x720,1920x1080').split(',').map((s) => s.split('x').map(Number));
const langs = (process.env.LANGS ?? 'en,zh').split(',');

if (!password) {
  console.error('set CAIRN_PASSWORD (and CAIRN_USER, CAIRN_URL)');
  process.exit(2);
}
mkdirSync(out, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
  ],
});

let failures = 0;
try {
  for (const lang of langs) {
    for (const [width, height] of sizes) {
      const context = await browser.newContext({
        viewport: { width, height },
        ignoreHTTPSErrors: true,
        locale: lang === 'zh' ? 'zh-CN' : 'en-US',
      });
      await context.addInitScript((l) => localStorage.setItem('cairn.lang', l), lang);
      const page = await context.newPage();
      page.on('pageerror', (e) => {
        failures++;
        console.error(`[${lang} ${width}x${height}] page error: ${e.message}`);
      });
      page.on('console', (m) => {
        if (m.type() === 'error') console.error(`[${lang} ${width}x${height}] console: ${m.text()}`);
      });
      await page.goto(`${base}/`);
      await page.getByTestId('login-user').waitFor();
      const shot = async (name) => {
        const file = join(out, `${lang}-${width}x${height}-${name}.png`);
        await page.screenshot({ path: file, fullPage: true });
        // A page wider than the window means something overflowed it.
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        console.log(`${file}${overflow > 0 ? `  (page overflows sideways by ${overflow}px)` : ''}`);
        if (overflow > 0) failures++;
      };
      if (pages.includes('login')) await shot('login');
      await page.getByTestId('login-user').fill(user);
      await page.getByTestId('login-password').fill(password);
      await page.getByTestId('login-submit').click();
      await page.getByTestId('nav-overview').waitFor();
      for (const name of pages.filter((p) => p !== 'login')) {
        const link = page.getByTestId(`nav-${name}`);
        if ((await link.count()) === 0) continue;
        await link.click();
        await page.waitForLoadState('networkidle').catch(() => undefined);
        await page.waitForTimeout(name === 'dr' ? 1500 : 600);
        if (name === 'snapshots') {
          const first = page.locator('[data-testid^="snap-open-"]').first();
          if (await first.count()) {
            await first.click();
            await page.getByTestId('snapshot-detail').waitFor();
            await page.waitForTimeout(400);
          }
        }
        await shot(name);
        if (name === 'policies' && (await page.getByTestId('policy-new').count())) {
          await page.getByTestId('policy-new').click();
          await page.getByTestId('policy-form').waitFor();
          await shot('policy-form');
        }
      }
      await context.close();
    }
  }
} finally {
  await browser.close();
}
if (failures) {
  console.error(`${failures} problem(s)`);
  process.exit(1);
}
