// Campaigns: made from a template (or a text) and a CSV of recipients, with their progress
// live, pause, resume and cancel. Templates can be written here too.

import { get, post, call, enc } from './api.js';
import { h, fill, when, badge, notify, act, field, panel } from './dom.js';
import { onEvent } from './live.js';

/** The counts in the order a message goes through them. */
const STAGES = ['read', 'delivered', 'sent', 'sending', 'queued', 'scheduled', 'failed', 'canceled'];

function progress(campaign) {
  const total = campaign.total || 1;
  const counts = campaign.counts;
  const done = counts.sent + counts.delivered + counts.read + counts.failed + counts.canceled;
  return h('div', { class: 'progress-box' },
    h('div', { class: 'bar', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': campaign.total, 'aria-valuenow': done,
      'aria-label': `${campaign.name}: ${done} of ${campaign.total} done` },
    STAGES.filter((s) => counts[s]).map((s) => h('span', { class: `seg c-${s}`, style: { width: `${(100 * counts[s]) / total}%` }, title: `${counts[s]} ${s}` }))),
    h('div', { class: 'counts' },
      h('span', {}, h('strong', { class: 'done-count' }, String(done)), ` of ${campaign.total} done`),
      STAGES.filter((s) => counts[s]).map((s) => h('span', { class: `count c-${s}`, dataset: { stage: s } }, `${counts[s]} ${s}`)),
      campaign.rejected ? h('span', { class: 'muted' }, `${campaign.rejected} rejected at upload`) : null),
    Object.keys(campaign.failed_by_reason || {}).length
      ? h('ul', { class: 'small error' }, Object.entries(campaign.failed_by_reason).map(([why, n]) => h('li', {}, `${n} failed: ${why}`)))
      : null);
}

function controls(campaign, sessionId, reload) {
  const run = (label, action) => h('button', { class: 'quiet', onclick: (e) => act(e.currentTarget, async () => {
    await post(`/sessions/${enc(sessionId)}/campaigns/${enc(campaign.id)}/${action}`);
    await reload();
  }) }, label);
  const buttons = [];
  if (['running', 'scheduled'].includes(campaign.status)) buttons.push(run('Pause', 'pause'));
  if (campaign.status === 'paused') buttons.push(run('Resume', 'resume'));
  if (['running', 'scheduled', 'paused'].includes(campaign.status)) buttons.push(run('Cancel', 'cancel'));
  return h('div', { class: 'actions' }, buttons);
}

function templateForm(reloadTemplates) {
  const name = h('input', { id: 'template-name', required: true, placeholder: 'promo' });
  const body = h('textarea', { id: 'template-body', required: true, rows: 2, placeholder: 'Hi {{name}}, 20% off this week!' });
  const submit = h('button', { type: 'submit' }, 'Save template');
  return h('form', { class: 'inline', onsubmit: (e) => {
    e.preventDefault();
    act(submit, async () => {
      await post('/templates', { name: name.value.trim(), content: { type: 'text', text: { body: body.value } } });
      notify(`Template ${name.value} saved`);
      e.target.reset();
      await reloadTemplates();
    });
  } }, field('Template name', name), field('Text', body, 'Placeholders like {{name}} are filled from the CSV columns.'), submit);
}

function campaignForm(sessionId, templates, reload) {
  const name = h('input', { id: 'campaign-name', required: true, placeholder: 'November promo' });
  const source = h('select', { id: 'campaign-template' }, h('option', { value: '' }, 'Write the text below'),
    templates.map((t) => h('option', { value: t.name }, `${t.name}${t.params.length ? ` ({{${t.params.join('}}, {{')}}})` : ''}`)));
  const text = h('textarea', { id: 'campaign-text', rows: 2, placeholder: 'Hi {{name}}!' });
  const csv = h('input', { id: 'campaign-csv', type: 'file', accept: '.csv,text/csv', required: true });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Start campaign');
  const sync = () => { text.disabled = Boolean(source.value); };
  source.addEventListener('change', sync);
  sync();
  return h('form', { class: 'inline', id: 'campaign-create', onsubmit: (e) => {
    e.preventDefault();
    act(submit, async () => {
      const campaign = { name: name.value.trim() };
      if (source.value) campaign.template = { name: source.value };
      else campaign.content = { type: 'text', text: { body: text.value } };
      const form = new FormData();
      form.append('campaign', new Blob([JSON.stringify(campaign)], { type: 'application/json' }));
      form.append('recipients', csv.files[0], csv.files[0].name);
      const created = await call('POST', `/v1/sessions/${enc(sessionId)}/campaigns`, form);
      const rejected = created.rejected_recipients.length;
      notify(`Started ${created.name}: ${created.total} recipients${rejected ? `, ${rejected} rejected` : ''}`);
      e.target.reset();
      sync();
      await reload();
    });
  } }, field('Name', name), field('Template', source), field('Text', text),
  field('Recipients (CSV)', csv, 'A header row; a "to" (or "phone") column and one column per placeholder.'), submit);
}

/** `#/campaigns[/{session}]`. */
export function render(main, [sessionId]) {
  let gone = false;
  const picker = h('select', { id: 'campaign-session', 'aria-label': 'Session', onchange: () => { location.hash = `#/campaigns/${enc(picker.value)}`; } });
  const create = h('div');
  const templatesBox = h('div');
  const list = h('div', { id: 'campaigns' });

  const reload = async () => {
    if (!sessionId) return;
    const { data } = await get(`/sessions/${enc(sessionId)}/campaigns`);
    if (gone) return;
    fill(list, data.length ? data.map((c) => h('article', { class: 'campaign', dataset: { campaign: c.id, status: c.status } },
      h('header', {}, h('h3', {}, c.name), badge(c.status), h('span', { class: 'muted small' }, `${c.template ? `template ${c.template} · ` : ''}${when(c.created_at)}`)),
      progress(c),
      controls(c, sessionId, reload))) : h('p', { class: 'muted' }, 'No campaigns in this session yet.'));
  };
  const reloadTemplates = async () => {
    const { data } = await get('/templates');
    if (gone) return;
    fill(create, sessionId ? campaignForm(sessionId, data, reload) : h('p', { class: 'muted' }, 'Pick a session.'));
    fill(templatesBox, data.length ? h('p', { class: 'muted' }, `Templates: ${data.map((t) => t.name).join(', ')}`) : null, templateForm(reloadTemplates));
  };

  fill(main, h('h1', {}, 'Campaigns'), h('div', { class: 'toolbar' }, picker),
    panel('New campaign', create), h('details', { class: 'panel' }, h('summary', {}, 'Templates'), templatesBox),
    panel('Campaigns', list));
  get('/sessions').then(({ data }) => {
    if (gone) return;
    fill(picker, data.map((s) => h('option', { value: s.id, selected: s.id === sessionId }, `${s.id} · ${s.status}`)));
    if (!sessionId && data.length) location.hash = `#/campaigns/${enc(data[0].id)}`;
  }).then(reloadTemplates).then(reload).catch((e) => notify(e.message, 'error'));

  // campaign.status comes at state changes; the counts move with every message.status, so
  // look again at most twice a second while messages of a campaign move.
  let pending = null;
  const soon = () => {
    if (!pending) pending = setTimeout(() => { pending = null; reload().catch(() => {}); }, 500);
  };
  const off = onEvent((event) => {
    if (event.session_id !== sessionId) return;
    if (event.type === 'campaign.status' || (event.type === 'message.status' && event.data.campaign_id)) soon();
  });
  return () => { gone = true; clearTimeout(pending); off(); };
}
