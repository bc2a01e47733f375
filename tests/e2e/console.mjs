// The web console in Debian's chromium, driven by playwright-core, against
// the real vault, agent and DR vault that console_test.sh started. Prints
// PASS/FAIL lines and "N passed, N failed"; saves a screenshot of every page
// it visits (English and Chinese, 1280x720 and 1920x1080) into SHOTS.
//
// Environment (from console_test.sh): ROOT, WORK, URL (the primary's
// console), DR_URL (the DR vault's), VAULT_ADDR (agents' host:port), VAULT,
// AGENT (binaries), SHOTS, and the passwords ADMIN_PW, OPERATOR_PW,
// AUDITOR_PW, DR_PW.
import { createRequire } from 'node:module';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';

const env = process.env;
const require = createRequire(`${env.ROOT}/web-ui/package.json`);
const { chromium } = require('playwright-core');

let passed = 0;
let failed = 0;
function check(what, ok, detail = '') {
  if (ok) {
    passed++;
    console.log(`PASS: ${what}`);
  } else {
    failed++;
    console.log(`FAIL: ${what} ${detail}`);
  }
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const children = [];
process.on('exit', () => children.forEach((c) => { try { c.kill('SIGINT'); } catch {} }));

async function session(url, viewport = { width: 1280, height: 720 }) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  // The browser logs every 4xx answer as a console error; the ones a test
  // provokes on purpose (a wrong password, an auditor's write) are expected.
  page.expected = [];
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const text = m.text();
    const status = (text.match(/status of (\d{3})/) || [])[1];
    if (status && page.expected.includes(Number(status))) return;
    errors.push(text);
  });
  await page.goto(url);
  page.on('response', (r) => {
    if (r.status() >= 400 && !page.expected.includes(r.status())) {
      errors.push(`${r.status()} ${r.request().method()} ${r.url()}`);
    }
  });
  return { context, page, errors };
}

async function login(page, user, password) {
  await page.getByTestId('login-user').fill(user);
  await page.getByTestId('login-password').fill(password);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('header-user').waitFor({ timeout: 10000 });
}

async function go(page, name) {
  await page.getByTestId(`nav-${name}`).click();
  await page.getByTestId(`${name}-page`).waitFor({ timeout: 10000 });
}

// Scrolls `testid` to the top of the window, with the heading above it in view.
async function scrollTo(page, testid) {
  await page.getByTestId(testid).evaluate((e) => window.scrollBy(0, e.getBoundingClientRect().top - 48));
}

async function shot(page, name) {
  await page.screenshot({ path: `${env.SHOTS}/${name}.png`, fullPage: false });
}

// The page fits the viewport's width: tables scroll inside their panels.
async function fitsWidth(page) {
  return page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1);
}

async function choose(page, testid, value) {
  const el = page.getByTestId(testid);
  const tag = await el.evaluate((e) => e.tagName);
  if (tag === 'SELECT') {
    await el.selectOption({ label: value }).catch(() => el.selectOption(value));
  } else {
    await el.fill(value);
  }
}

// A write the API must refuse for this session's role: 403, not a crash.
async function refusedWrite(page, path, body) {
  return page.evaluate(async ([p, b]) => {
    const csrf = sessionStorage.getItem('cairn.csrf') || '';
    const r = await fetch(p, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
      body: JSON.stringify(b),
    });
    let code = '';
    try { code = (await r.json()).error.code; } catch {}
    return `${r.status} ${code}`;
  }, [path, body]);
}

// A read the API must refuse for this session's role: the status and code.
async function refusedRead(page, path) {
  return page.evaluate(async (p) => {
    const r = await fetch(p);
    let code = '';
    try { code = (await r.json()).error.code; } catch {}
    return `${r.status} ${code}`;
  }, path);
}

// No table on the page scrolls sideways inside its panel.
async function tablesFit(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('.table-wrap')].every((w) => w.scrollWidth <= w.clientWidth + 1));
}

// Opens the first snapshot of the Snapshots page's department.
async function openFirstSnapshot(page) {
  await go(page, 'snapshots');
  const open = page.locator('[data-testid^="snap-open-"]').first();
  await open.waitFor({ timeout: 10000 });
  await open.click();
  await page.getByTestId('snapshot-id').waitFor({ timeout: 10000 });
}

// Waits until the file browser lists `path`.
async function listed(page, path) {
  await page.getByTestId('browse-summary').filter({ hasText: `${path}:` }).waitFor({ timeout: 10000 });
}

// Waits until the history shows job `id` ended; its row's text.
async function endedJobRow(page, id) {
  let text = '';
  for (let i = 0; i < 120; i++) {
    const row = page.locator(`[data-testid="jobs-history"] [data-testid="job-row-${id}"]`);
    text = (await row.count()) ? (await row.textContent()) || '' : '';
    if (/done|failed|missed|完成|失败|错过/i.test(text)) break;
    await page.waitForTimeout(500);
  }
  return text;
}

function cli(bin, args, input) {
  return execFileSync(bin, args, { input, encoding: 'utf8' });
}

try {
  // --- the login page, and a wrong password ---------------------------------
  {
    const { page, context, errors } = await session(env.URL);
    await page.getByTestId('login-user').waitFor();
    await shot(page, 'login-en');
    page.expected = [401];
    await page.getByTestId('login-user').fill('ui.admin');
    await page.getByTestId('login-password').fill('not the password');
    await page.getByTestId('login-submit').click();
    await page.waitForTimeout(500);
    const text = await page.textContent('body');
    check('a wrong password is refused on the page, with a reason', /password|refused|incorrect|wrong/i.test(text),
          text.slice(0, 200));
    check('the login page has no script errors', errors.length === 0, errors.join('; '));
    await context.close();
  }

  // --- the admin: overview, a department, users -----------------------------
  {
    const { page, context, errors } = await session(env.URL);
    await login(page, 'ui.admin', env.ADMIN_PW);
    await page.getByTestId('overview-page').waitFor();
    check('the admin logs in and sees the overview', true);
    await shot(page, 'overview-en');
    await go(page, 'departments');
    await page.getByTestId('dept-create-name').fill('finance');
    await page.getByTestId('dept-create-submit').click();
    await page.getByTestId('dept-row-finance').waitFor({ timeout: 10000 });
    check('the admin creates department finance', true);
    await shot(page, 'departments-en');
    await go(page, 'users');
    await shot(page, 'users-en');
    check('the users page is there for the admin', await page.getByTestId('users-page').isVisible());
    check('no script errors for the admin', errors.length === 0, errors.join('; '));
    await context.close();
  }
  // The people of the department (the CLI, as the city's admin would).
  cli(env.VAULT, ['user', 'create', 'li.wei', '--role', 'operator', '--department', 'finance',
                  '--password-stdin', '--data', `${env.WORK}/vault`], env.OPERATOR_PW + '\n');

  // --- the operator: a token, an agent, a policy, a source, a backup --------
  {
    const { page, context, errors } = await session(env.URL);
    await login(page, 'li.wei', env.OPERATOR_PW);
    check('the operator does not see the users page', (await page.getByTestId('nav-users').count()) === 0);
    await go(page, 'departments');
    check('the operator may not create departments (no form)', (await page.getByTestId('dept-create-name').count()) === 0);
    await page.getByTestId('token-create').click();
    await page.getByTestId('token-command').waitFor({ timeout: 10000 });
    const command = (await page.getByTestId('token-command').textContent()) || '';
    const token = (command.match(/--token\s+(\S+)/) || [])[1];
    check('a token and the one-line enrolment command are shown', !!token && command.includes('cairn-agent enroll'), command);
    await shot(page, 'enrol-token-en');
    // The command, as an operator would paste it on the department's server
    // (with this test's state directory and the vault's address).
    cli(env.AGENT, ['enroll', '--vault', env.VAULT_ADDR, '--token', token, '--state', `${env.WORK}/agent`,
                    '--host', 'fin-app']);
    const agent = spawn(env.AGENT, ['run', '--state', `${env.WORK}/agent`], { stdio: 'ignore' });
    children.push(agent);
    await page.reload();
    await go(page, 'departments');
    await page.getByText('fin-app').first().waitFor({ timeout: 10000 });
    check('the enrolled agent is listed', true);

    await go(page, 'policies');
    await page.getByTestId('policy-new').click();
    await page.getByTestId('policy-form-name').fill('finance-files');
    await page.getByTestId('policy-form-rpo').fill('26h');
    await page.getByTestId('policy-form-keep_daily').fill('3').catch(() => {});
    page.expected = [400];  // the vault's refusal, shown inline
    await page.getByTestId('policy-form-submit').click();
    await page.waitForTimeout(700);
    const refusal = await page.getByTestId('policy-form-error').count();
    if (refusal > 0) {
      const why = await page.getByTestId('policy-form-error').textContent();
      check('a policy the template forbids is refused inline, with the vault\'s reason', (why || '').length > 10, why);
      await shot(page, 'policy-refused-en');
      // Take the template's own values.
      await page.getByTestId('policy-form-keep_daily').fill('14').catch(() => {});
      await page.getByTestId('policy-form-submit').click();
    }
    await page.getByTestId('policy-row-finance-files').waitFor({ timeout: 10000 });
    page.expected = [];
    check('the operator creates a policy', true);
    await page.getByTestId('source-add').click();
    await choose(page, 'source-form-department', 'finance').catch(() => {});
    await choose(page, 'source-form-agent', 'fin-app');
    await choose(page, 'source-form-policy', 'finance-files').catch(() => {});
    await page.getByTestId('source-form-paths').fill(`${env.WORK}/src`);
    await page.getByTestId('source-form-submit').click();
    await page.locator('[data-testid^="source-row-"]').first().waitFor({ timeout: 10000 });
    check('and assigns the agent\'s directory to it', true);
    await shot(page, 'policies-en');

    await go(page, 'jobs');
    await page.getByTestId('job-source').waitFor();
    const options = await page.getByTestId('job-source').locator('option').allTextContents();
    const sourceOption = options.find((o) => o.includes('fin-app'));
    if (sourceOption) await page.getByTestId('job-source').selectOption({ label: sourceOption });
    await page.getByTestId('job-backup-now').click();
    await page.getByTestId('job-backup-queued').waitFor({ timeout: 10000 });
    const queued = (await page.getByTestId('job-backup-queued').textContent()) || '';
    const jobId = (queued.match(/(\d+)/) || [])[1];
    check('"back up now" queues a job', !!jobId, queued);
    let done = false;
    for (let i = 0; i < 120 && !done; i++) {
      await page.waitForTimeout(500);
      const row = page.locator(`[data-testid="jobs-history"] [data-testid="job-row-${jobId}"]`);
      const text = (await row.count()) ? (await row.textContent()) || '' : '';
      done = /done|finished|succeeded|完成/i.test(text);
      if (i === 2) await shot(page, 'jobs-running-en');
    }
    check('the operator watches the backup finish', done);
    const jobLog = (await page.getByTestId(`job-log-${jobId}`).textContent().catch(() => '')) || '';
    check('the finished job keeps its consistency log (not point-in-time on this file system)',
          /not point-in-time/.test(jobLog), jobLog);
    await shot(page, 'jobs-en');

    // The snapshot's files, from the root down to the backed-up directory.
    await openFirstSnapshot(page);
    await page.getByTestId('snapshot-browser').waitFor({ timeout: 10000 });
    const readLive = (await page.getByTestId('snapshot-point-in-time').textContent()) || '';
    check('the snapshot says its data was read live, not point-in-time', /live/.test(readLive), readLive);
    await listed(page, '/');
    const names = `${env.WORK}/src`.split('/').filter((n) => n);
    let at = '';
    for (const [i, name] of names.entries()) {
      at += `/${name}`;
      if (i === names.length - 1) {
        // The last step with the keyboard: the focus follows into the listing.
        await page.getByTestId(`browse-open-${name}`).focus();
        await page.keyboard.press('Enter');
      } else {
        await page.getByTestId(`browse-open-${name}`).click();
      }
      await listed(page, at);
    }
    check('the operator browses the snapshot from its root down to the backed-up directory', true);
    // The focus moves once the listing is drawn (an effect after the paint).
    await page.waitForFunction(() => document.activeElement?.getAttribute('data-testid') === 'browse-here',
                               null, { timeout: 3000 }).catch(() => {});
    const focusedHere = await page.evaluate(() => document.activeElement?.getAttribute('data-testid'));
    check('the keyboard opens a directory and the focus moves to the new path', focusedHere === 'browse-here', focusedHere);
    const rows = await page.locator('[data-testid^="browse-entry-"]').evaluateAll(
      (els) => els.map((e) => [e.getAttribute('data-testid').slice('browse-entry-'.length), e.getAttribute('data-type')]));
    const order = rows.map(([n]) => n).join(' ');
    check('directories are listed first, then files', order === 'empty sub big.bin link', order);
    const big = (await page.getByTestId('browse-entry-big.bin').textContent()) || '';
    check('big.bin is listed with its size and mode', /1\.0 MiB/.test(big) && /-rw/.test(big), big);
    const target = (await page.getByTestId('browse-target-link').textContent()) || '';
    check('the symlink shows its target', target.includes('big.bin'), target);
    await scrollTo(page, 'snapshot-browser');
    await shot(page, 'snapshot-browse-en');
    await page.goBack();
    await listed(page, at.slice(0, at.lastIndexOf('/')));
    check('the browser\'s Back button goes up one directory', true);
    await page.getByTestId('browse-open-src').click();
    await listed(page, at);

    // Drill now: no drill host is enrolled, and the vault says how to enrol one.
    page.expected = [400];
    await page.getByTestId('snapshot-drill-now').click();
    await page.getByTestId('snapshot-drill-error').waitFor({ timeout: 10000 });
    const refusedDrill = (await page.getByTestId('snapshot-drill-error').textContent()) || '';
    check('"drill now" without a drill host is refused inline, saying how to enrol one',
          refusedDrill.includes('--drill-host'), refusedDrill);
    const drillWraps = await page.getByTestId('snapshot-drill-error').evaluate((e) => e.scrollWidth <= e.clientWidth + 1);
    check('and the long refusal wraps inside the panel', drillWraps && (await fitsWidth(page)));
    await scrollTo(page, 'snapshot-drill');
    await shot(page, 'snapshot-drill-refused-en');
    // The same in Chinese.
    await page.getByTestId('lang-switch').selectOption('zh');
    await page.getByTestId('snapshot-drill-error').filter({ hasText: '保管库' }).waitFor({ timeout: 10000 });
    await scrollTo(page, 'snapshot-drill');
    await shot(page, 'snapshot-drill-refused-zh');
    await scrollTo(page, 'snapshot-browser');
    await shot(page, 'snapshot-browse-zh');
    page.expected = [];
    await page.getByTestId('lang-switch').selectOption('en');

    // Restore on the agent, from the console: the dialog says where the
    // files go, the job runs on the real agent, and the files are on disk.
    const restoreTarget = `${env.WORK}/restored-by-console`;
    await scrollTo(page, 'snapshot-restore-agent');
    await page.getByTestId('restore-agent-target').fill('relative/dir');
    check('a relative restore target is refused before anything is sent',
          await page.getByTestId('restore-agent-start').isDisabled());
    await page.getByTestId('restore-agent-target').fill(restoreTarget);
    await page.getByTestId('restore-agent-start').click();
    const restoreConsequence = (await page.getByTestId('confirm-consequence').textContent()) || '';
    check('the restore dialog names the agent\'s host and the target',
          restoreConsequence.includes('fin-app') && restoreConsequence.includes(restoreTarget), restoreConsequence);
    await shot(page, 'snapshot-restore-confirm-en');
    await page.getByTestId('confirm-submit').click();
    await page.getByTestId('snapshot-restore-queued').waitFor({ timeout: 10000 });
    const restoreJob = (((await page.getByTestId('snapshot-restore-queued').textContent()) || '').match(/(\d+)/) || [])[1];
    await go(page, 'jobs');
    const restoreRow = await endedJobRow(page, restoreJob);
    check('the restore job finishes on the agent, shown as a restore into its target',
          /done/i.test(restoreRow) && /restore/i.test(restoreRow) && restoreRow.includes(restoreTarget), restoreRow);
    let same = false;
    try {
      execFileSync('diff', ['-r', '--no-dereference', `${env.WORK}/src`, `${restoreTarget}${env.WORK}/src`]);
      same = true;
    } catch (e) {
      same = false;
    }
    check('the restored files on the agent\'s disk equal the backed-up ones', same);
    check('a finished restore shows no backup figures', !/MiB new/.test(restoreRow), restoreRow);
    await scrollTo(page, 'jobs-history');
    await shot(page, 'jobs-restore-en');
    await page.getByTestId('lang-switch').selectOption('zh');
    await page.getByTestId('jobs-history').filter({ hasText: '恢复' }).waitFor({ timeout: 10000 });
    await scrollTo(page, 'jobs-history');
    await shot(page, 'jobs-restore-zh');
    await page.getByTestId('lang-switch').selectOption('en');

    // A drill host, enrolled from a token with "drill host" ticked: then
    // "drill now" runs a real drill whose report reaches the drills page.
    await go(page, 'departments');
    await page.getByTestId('token-drill-host').check();
    await page.getByTestId('token-create').click();
    await page.getByTestId('token-command').waitFor({ timeout: 10000 });
    const drillCommand = (await page.getByTestId('token-command').textContent()) || '';
    const drillToken = (drillCommand.match(/--token\s+(\S+)/) || [])[1];
    cli(env.AGENT, ['enroll', '--vault', env.VAULT_ADDR, '--token', drillToken, '--state', `${env.WORK}/drill-agent`,
                    '--host', 'fin-drill']);
    const drillAgent = spawn(env.AGENT, ['run', '--state', `${env.WORK}/drill-agent`,
                                         '--drill-sandbox', `${env.WORK}/drill-sandbox`], { stdio: 'ignore' });
    children.push(drillAgent);
    await openFirstSnapshot(page);
    await page.getByTestId('snapshot-drill-now').click();
    await page.getByTestId('snapshot-drill-queued').waitFor({ timeout: 10000 });
    const drillQueued = (await page.getByTestId('snapshot-drill-queued').textContent()) || '';
    check('"drill now" with a drill host queues the drill there', drillQueued.includes('fin-drill'), drillQueued);
    const drillJob = (drillQueued.match(/(\d+)/) || [])[1];
    await go(page, 'jobs');
    const drillRow = await endedJobRow(page, drillJob);
    check('the drill runs to its end on the drill host', /done/i.test(drillRow) && /drill/i.test(drillRow), drillRow);
    check('no script errors for the operator', errors.length === 0, errors.join('; '));
    await context.close();
  }
  cli(env.VAULT, ['user', 'create', 'wang.fang', '--role', 'auditor', '--password-stdin', '--data', `${env.WORK}/vault`],
      env.AUDITOR_PW + '\n');

  // --- the auditor: compliance, drills, the audit trail; no changes ---------
  {
    const { page, context, errors } = await session(env.URL);
    await login(page, 'wang.fang', env.AUDITOR_PW);
    await go(page, 'compliance');
    await page.getByTestId('compliance-table').waitFor({ timeout: 10000 });
    // The table is drawn before its rows arrive.
    await page.locator('[data-testid^="compliance-row-"]').first().waitFor({ timeout: 10000 }).catch(() => {});
    const table = (await page.getByTestId('compliance-table').textContent()) || '';
    check('the auditor sees the compliance table with the source', table.includes('fin-app'), table.slice(0, 200));
    await shot(page, 'compliance-en');
    const drillRow = page.locator('[data-testid^="drill-row-"]').first();
    await drillRow.waitFor({ timeout: 10000 }).catch(() => {});
    const drillText = (await drillRow.count()) ? (await drillRow.textContent()) || '' : '';
    check('and the operator\'s drill, passed, on drill host fin-drill', /passed/i.test(drillText) && drillText.includes('fin-drill'),
          drillText);
    await scrollTo(page, 'drills-panel').catch(() => {});
    await shot(page, 'drills-en');
    await go(page, 'audit');
    await page.getByTestId('audit-verify-status').waitFor({ timeout: 10000 });
    const status = (await page.getByTestId('audit-verify-status').textContent()) || '';
    check('the audit trail says whether the chain verifies', /verif/i.test(status), status);
    await shot(page, 'audit-en');
    // File names are the department's data: no browser, no drill for auditors.
    await openFirstSnapshot(page);
    await page.getByTestId('snapshot-browse-auditor').waitFor({ timeout: 10000 });
    check('the auditor is told why the snapshot\'s files are not shown, and gets no file browser',
          (await page.getByTestId('snapshot-browser').count()) === 0 &&
          (await page.getByTestId('snapshot-drill-now').count()) === 0);
    await shot(page, 'snapshot-auditor-en');
    const snapId = (await page.getByTestId('snapshot-id').textContent()) || '';
    page.expected = [403];
    const tree403 = await refusedRead(page, `/api/v1/departments/finance/snapshots/${snapId}/tree`);
    check('and the vault refuses the auditor\'s listing (403)', tree403 === '403 forbidden', tree403);
    page.expected = [];
    await go(page, 'policies');
    check('the auditor is offered no way to change a policy',
          (await page.getByTestId('policy-new').count()) === 0 && (await page.getByTestId('source-add').count()) === 0);
    await go(page, 'departments');
    check('nor to create departments or tokens',
          (await page.getByTestId('dept-create-name').count()) === 0 && (await page.getByTestId('token-create').count()) === 0);
    page.expected = [403];
    const status403 = await refusedWrite(page, '/api/v1/departments', { name: 'parks' });
    check('and the API refuses the auditor\'s write (403 forbidden, not a CSRF slip)', status403 === '403 forbidden', status403);
    check('no script errors for the auditor', errors.length === 0, errors.join('; '));

    // The Chinese console, for the city's operators.
    await page.getByTestId('lang-switch').selectOption('zh').catch(async () => page.getByTestId('lang-switch').click());
    await page.waitForTimeout(300);
    const nav = (await page.locator('nav').first().textContent()) || '';
    check('the console switches to Simplified Chinese', /[\u4e00-\u9fff]/.test(nav), nav.slice(0, 80));
    await go(page, 'compliance');
    await shot(page, 'compliance-zh');
    await go(page, 'overview');
    await shot(page, 'overview-zh');
    await page.reload();
    await page.getByTestId('overview-page').waitFor();
    check('the language is remembered', /[\u4e00-\u9fff]/.test((await page.locator('nav').first().textContent()) || ''));
    await context.close();
  }

  // --- every page at 1280x720 and 1920x1080 --------------------------------
  for (const viewport of [{ width: 1280, height: 720 }, { width: 1920, height: 1080 }]) {
    const { page, context } = await session(env.URL, viewport);
    await login(page, 'ui.admin', env.ADMIN_PW);
    const bad = [];
    const scrolling = [];
    for (const name of ['overview', 'departments', 'policies', 'jobs', 'snapshots', 'dr', 'compliance', 'audit', 'users']) {
      await go(page, name);
      if (name === 'snapshots') {
        // With a snapshot open at its backed-up directory.
        await openFirstSnapshot(page);
        await page.getByTestId('browse-jump-0').click();
        await listed(page, `${env.WORK}/src`);
      }
      await page.waitForTimeout(300);
      if (!(await fitsWidth(page))) bad.push(name);
      if (['overview', 'jobs', 'snapshots', 'compliance'].includes(name) && !(await tablesFit(page))) scrolling.push(name);
      await shot(page, `${name}-${viewport.width}`);
    }
    check(`no page overflows ${viewport.width}x${viewport.height}`, bad.length === 0, bad.join(', '));
    if (viewport.width === 1920) {
      // Long reasons (a missed drill's) wrap in their cells.
      check('no table of the overview, jobs, snapshots or compliance scrolls sideways at 1920',
            scrolling.length === 0, scrolling.join(', '));
    }
    // The keyboard: Tab reaches the navigation with a visible focus.
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => document.activeElement && document.activeElement.tagName);
    check(`the keyboard moves focus (${viewport.width})`, focused && focused !== 'BODY', focused);
    await context.close();
  }

  // --- a DR user promotes the DR vault ---------------------------------------
  {
    const { page, context, errors } = await session(env.DR_URL);
    await login(page, 'dr.chen', env.DR_PW);
    await go(page, 'dr');
    await shot(page, 'dr-en');
    await page.getByTestId('promote-button').click();
    const consequence = (await page.getByTestId('confirm-consequence').textContent()) || '';
    check('promotion asks for a confirmation that states the consequence', consequence.length > 40, consequence);
    await page.getByTestId('confirm-reason').fill('primary data centre flooded (drill)');
    await shot(page, 'dr-promote-confirm-en');
    await page.getByTestId('confirm-submit').click();
    let promoted = false;
    for (let i = 0; i < 20 && !promoted; i++) {
      await page.waitForTimeout(300);
      promoted = /yes|promoted|是|已提升/i.test((await page.getByTestId('dr-promoted').textContent()) || '');
    }
    check('the DR user promotes the DR vault', promoted);
    const log = fs.readFileSync(`${env.WORK}/dr/promotions.log`, 'utf8');
    check('the promotion is recorded with who and why', log.includes('dr.chen') && log.includes('flooded'), log);
    await shot(page, 'dr-promoted-en');
    check('no script errors for the DR user', errors.length === 0, errors.join('; '));
    await context.close();
  }
} catch (e) {
  check('the browser test ran to its end', false, String(e && e.stack || e));
} finally {
  await browser.close();
  children.forEach((c) => { try { c.kill('SIGINT'); } catch {} });
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}
