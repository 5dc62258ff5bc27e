// The dashboard in a real browser (Debian's Chromium, driven by Playwright) against a live
// `wagate serve` on the simulated network, the way a person uses it: a wrong key, sign in,
// link two sessions with the QR screen's virtual phone, chat between them, a failing webhook
// retried, a 500-recipient campaign from a CSV. Screenshots go to $WAGATE_SCREENSHOTS when set.
//
// Usage: node dashboard.mjs WAGATE_BINARY   (playwright-core installed next to this file)

import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { crc32, deflateSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const binary = process.argv[2];
if (!binary) throw new Error('usage: node dashboard.mjs WAGATE_BINARY');
const KEY = 'dashboard-test-admin-key';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const shots = process.env.WAGATE_SCREENSHOTS;
if (shots) mkdirSync(shots, { recursive: true });
/** Longest wait for anything the page should show. */
const WAIT = 20_000;

async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A webhook receiver that is down: every POST gets 500 with a body saying so. */
async function brokenReceiver() {
  const calls = [];
  const server = createServer((request, response) => {
    calls.push(request.url);
    request.resume();
    response.writeHead(500, { 'Content-Type': 'text/plain' });
    response.end('receiver is down for maintenance');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, calls, url: `http://127.0.0.1:${server.address().port}/wagate` };
}

async function startWagate() {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'wagate-dashboard-'));
  const child = spawn(binary, ['serve'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      ...process.env,
      WAGATE_DATA_DIR: dataDir,
      WAGATE_LISTEN: `127.0.0.1:${port}`,
      WAGATE_ADMIN_KEY: KEY,
      WAGATE_LOG_FORMAT: 'text',
      RUST_LOG: 'warn',
      WAGATE_CONNECTORS__SIM__DELIVERY_DELAY_MS: '50',
      WAGATE_CONNECTORS__SIM__READ_DELAY_MS: '150',
      WAGATE_WEBHOOKS__ALLOW_PRIVATE_TARGETS: 'true',
      // One automatic attempt, then a long wait: the second attempt is the one we ask for.
      WAGATE_WEBHOOKS__RETRY_SCHEDULE_MS: '[600000]',
      WAGATE_WEBHOOKS__POLL_INTERVAL_MS: '50',
    },
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (i > 300) throw new Error('wagate did not start');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { base, stop: () => { child.kill('SIGTERM'); rmSync(dataDir, { recursive: true, force: true }); } };
}

async function api(base, method, path, body) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' },
    body: body && JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

/** A 96×64 PNG, green with a white band: something to send as a photo. */
function photo() {
  const [width, height] = [96, 64];
  const rows = [];
  for (let y = 0; y < height; y++) {
    const row = [0];
    for (let x = 0; x < width; x++) row.push(...(y > 26 && y < 38 ? [255, 255, 255] : [18, 140, 94]));
    rows.push(...row);
  }
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type), data]);
    const size = Buffer.alloc(4);
    size.writeUInt32BE(data.length);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc32(body));
    return Buffer.concat([size, body, sum]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header), chunk('IDAT', deflateSync(Buffer.from(rows))), chunk('IEND', Buffer.alloc(0))]);
}

async function shot(page, name) {
  if (shots) await page.screenshot({ path: join(shots, `${name}.png`), fullPage: false });
}

function step(text) {
  console.log(`dashboard: ${text}`);
}

async function signIn(page, base, key) {
  await page.goto(`${base}/ui/`);
  await page.fill('#key', key);
  await page.click('button[type=submit]');
}

async function linkWithVirtualPhone(page, id, number) {
  await page.fill('#main input[name=id]', id);
  await page.click('#main form button[type=submit]');
  await page.waitForURL(`**/ui/#/link/${id}`);
  await page.locator('img.qr').waitFor({ timeout: WAIT });
  if (id === 'alice') await shot(page, 'linking');
  await page.fill('#sim-phone', number);
  await page.click('#sim-scan');
  await page.locator('.link-stage.linked').waitFor({ timeout: WAIT });
  await page.getByText(`Linked to +${number}`).waitFor();
}

async function run(base, browser, receiver) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 820 }, colorScheme: 'light' });
  const page = await context.newPage();
  try {
    await use(base, context, page, receiver);
  } catch (e) {
    // What the page showed when it failed, and its text, for the log.
    await shot(page, 'failure').catch(() => {});
    console.error(`dashboard: failed at ${page.url()}:\n${await page.locator('body').innerText().catch(() => '')}`);
    throw e;
  }
  await context.close();
}

async function use(base, context, page, receiver) {
  const problems = [];
  page.on('pageerror', (e) => problems.push(e.message));

  step('a wrong key is refused with a message, not a blank page');
  await signIn(page, base, 'not-the-key');
  await page.locator('#sign-in-error').getByText('The server refused this key').waitFor({ timeout: WAIT });
  if (await page.locator('nav').count()) throw new Error('signed in with a wrong key');

  step('sign in');
  await page.fill('#key', KEY);
  await page.click('button[type=submit]');
  await page.locator('#sessions').waitFor({ timeout: WAIT });
  await page.locator('.live.live').waitFor({ timeout: WAIT });

  step('create and link two sessions through the QR screen');
  await linkWithVirtualPhone(page, 'alice', '15550001111');
  await page.goto(`${base}/ui/#/sessions`);
  await linkWithVirtualPhone(page, 'bob', '15550002222');
  await page.goto(`${base}/ui/#/sessions`);
  for (const id of ['alice', 'bob']) {
    await page.locator(`tr[data-session=${id}] .badge.s-connected`).waitFor({ timeout: WAIT });
  }
  await shot(page, 'sessions');

  step("bob's chat is open in another tab before alice writes");
  const bobPage = await context.newPage();
  bobPage.on('pageerror', (e) => problems.push(e.message));
  await signIn(bobPage, base, KEY);
  await bobPage.locator('#sessions').waitFor({ timeout: WAIT });
  await bobPage.goto(`${base}/ui/#/chats/bob/15550001111`);
  await bobPage.locator('#thread').waitFor();

  step('alice sends from the chat view and sees it read');
  await page.goto(`${base}/ui/#/chats/alice/15550002222`);
  await page.fill('#compose-text', 'Hello Bob, from the dashboard');
  await page.click('#compose-send');
  await page.locator('.bubble.out', { hasText: 'Hello Bob, from the dashboard' })
    .locator('.tick[data-status=read]').waitFor({ timeout: WAIT });

  step("the message appears in bob's chat without a reload");
  await bobPage.locator('.bubble.in', { hasText: 'Hello Bob, from the dashboard' }).waitFor({ timeout: WAIT });

  step("bob answers from his tab; alice's chat shows it without a reload");
  await bobPage.fill('#compose-text', 'Hi Alice! Got it.');
  await bobPage.click('#compose-send');
  await page.locator('.bubble.in', { hasText: 'Hi Alice! Got it.' }).waitFor({ timeout: WAIT });
  await page.locator('#chat-list a', { hasText: '+15550002222' }).waitFor({ timeout: WAIT });

  step('alice sends a photo with a caption; both chats preview it');
  await page.setInputFiles('#compose-file', { name: 'banner.png', mimeType: 'image/png', buffer: photo() });
  await page.fill('#compose-text', 'This week\'s banner');
  await page.click('#compose-send');
  const sentPhoto = page.locator('.bubble.out', { hasText: 'This week\'s banner' });
  await sentPhoto.locator('.media img').waitFor({ timeout: WAIT });
  await sentPhoto.locator('.tick[data-status=read]').waitFor({ timeout: WAIT });
  const received = bobPage.locator('.bubble.in', { hasText: 'This week\'s banner' }).locator('.media img');
  await received.waitFor({ timeout: WAIT });
  const shown = await received.evaluate((img) => img.decode().then(() => img.naturalWidth));
  if (shown !== 96) throw new Error(`the received photo shows ${shown} pixels wide`);
  await page.fill('#compose-text', 'Great. The campaign starts in a minute.');
  await page.click('#compose-send');
  await page.locator('.bubble.out', { hasText: 'The campaign starts' }).locator('.tick[data-status=read]').waitFor({ timeout: WAIT });
  await shot(page, 'chat');
  await bobPage.close();

  step('a webhook to a receiver that answers 500: the failing delivery, its answer, a retry');
  await page.goto(`${base}/ui/#/webhooks`);
  await page.fill('#webhook-create input[name=url]', receiver.url);
  await page.fill('#webhook-create input[name=events]', 'message.received');
  await page.click('#webhook-create button[type=submit]');
  const secret = await page.locator('#webhook-secret').textContent({ timeout: WAIT });
  if (!secret.startsWith('whsec_')) throw new Error(`the secret shown is ${secret}`);
  await page.click(`a:has-text("${receiver.url}")`);
  await page.locator('#deliveries').waitFor();
  await api(base, 'POST', '/v1/sim/inbound', { session_id: 'bob', from: '447700900123', type: 'text', text: { body: 'hello from London' } });
  const delivery = page.locator('#deliveries tr[data-delivery]').first();
  await delivery.locator('summary', { hasText: '1 attempt' }).waitFor({ timeout: WAIT });
  await delivery.locator('summary').click();
  await delivery.getByText('HTTP 500').first().waitFor();
  await delivery.getByText('receiver is down for maintenance').first().waitFor();
  await shot(page, 'webhooks');
  await delivery.getByRole('button', { name: 'Retry' }).click();
  await delivery.locator('summary', { hasText: '2 attempts' }).waitFor({ timeout: WAIT });
  if (receiver.calls.length < 2) throw new Error(`the receiver was called ${receiver.calls.length} times`);

  step('a 500-recipient campaign from a template and a CSV runs to the end');
  await page.goto(`${base}/ui/#/campaigns/alice`);
  await page.locator('details.panel summary', { hasText: 'Templates' }).click();
  await page.fill('#template-name', 'promo');
  await page.fill('#template-body', 'Hi {{name}}, 20% off this week!');
  await page.click('details.panel button[type=submit]');
  await page.locator('#campaign-template option[value=promo]').waitFor({ state: 'attached', timeout: WAIT });
  await page.selectOption('#campaign-template', 'promo');
  await page.fill('#campaign-name', 'November promo');
  const rows = ['to,name'];
  for (let i = 0; i < 500; i++) rows.push(`+1 555 880 ${String(i).padStart(4, '0')},Customer ${i}`);
  await page.setInputFiles('#campaign-csv', { name: 'customers.csv', mimeType: 'text/csv', buffer: Buffer.from(rows.join('\n')) });
  await page.click('#campaign-create button[type=submit]');
  const campaign = page.locator('article.campaign', { hasText: 'November promo' });
  await campaign.waitFor({ timeout: WAIT });
  await campaign.locator('text=of 500 done').waitFor();
  await page.locator('article.campaign[data-status=completed]', { hasText: 'November promo' }).waitFor({ timeout: 60_000 });
  const done = await campaign.locator('.done-count').textContent();
  if (done !== '500') throw new Error(`the campaign shows ${done} of 500 done`);
  await shot(page, 'campaign');

  step('events and health show what happened');
  await page.goto(`${base}/ui/#/events`);
  await page.selectOption('#events-type', 'campaign.status');
  await page.locator('#events tr[data-type="campaign.status"]', { hasText: 'completed' }).first().waitFor({ timeout: WAIT });
  await page.selectOption('#events-type', 'message.received');
  await page.click('#events-pause');
  await api(base, 'POST', '/v1/sim/inbound', { session_id: 'alice', from: '447700900999', type: 'text', text: { body: 'sent while paused' } });
  await page.getByText('1 new while paused').waitFor({ timeout: WAIT });
  if (await page.locator('#events tr', { hasText: 'sent while paused' }).count()) throw new Error('a paused tail moved');
  await page.click('#events-pause');
  await page.locator('#events tr[data-type="message.received"]', { hasText: 'sent while paused' }).waitFor({ timeout: WAIT });
  await shot(page, 'events');
  await page.goto(`${base}/ui/#/health`);
  await page.locator('#readiness .badge.s-ready').waitFor({ timeout: WAIT });
  await page.locator('#nodes tr').first().waitFor();
  await shot(page, 'health');

  step('dark mode');
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.goto(`${base}/ui/#/sessions`);
  await page.locator('tr[data-session=alice]').waitFor({ timeout: WAIT });
  await shot(page, 'sessions-dark');

  if (problems.length) throw new Error(`the page threw: ${problems.join('; ')}`);
}

const receiver = await brokenReceiver();
const wagate = await startWagate();
const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
try {
  await run(wagate.base, browser, receiver);
  step('passed');
} finally {
  await browser.close();
  wagate.stop();
  receiver.server.close();
}
