// resources.js - resources per building and their credit settings: enable
// credit usage, pricing model (fixed / block / tiered), rate, increment,
// maximum per booking, unit, credit-only. Saved with PATCH
// /v1/resources/{id}; the rest of the resource's pricing is kept as it was.
import { patch, newIdempotencyKey } from '../api.js';
import {
  h, clear, pageHeader, select, sortableTable, fmtMoney, fmtAmount, unitName, emptyState, errorSlot, clearErrors,
  showError, toast, busy, titleCase, fromMinor, toMinor, uid,
} from '../ui.js';

let chosenBuilding = '';

export async function render(page, ctx) {
  const buildings = await ctx.buildings();
  if (!chosenBuilding || !buildings.some((b) => b.id === chosenBuilding)) chosenBuilding = buildings[0] ? buildings[0].id : '';
  page.append(pageHeader('Resources', 'Bookable spaces per building, and how they can be paid for with credits.'));
  if (!buildings.length) {
    page.append(emptyState('No buildings yet', 'Create a building and its resources through the API.'));
    return;
  }
  const bSel = select(buildings.map((b) => ({ value: b.id, label: b.name })), { value: chosenBuilding, id: 'res-building' });
  const info = h('span', { class: 'muted' });
  page.append(h('div', { class: 'filters' },
    h('div', { class: 'filter' }, h('label', { for: 'res-building', class: 'filter-label' }, 'Building'), bSel), info));
  const body = h('div', { class: 'card card-flush' });
  page.append(body);
  const dialog = editDialog(ctx, () => show());
  page.append(dialog.el);

  bSel.addEventListener('change', () => { chosenBuilding = bSel.value; show(); });

  async function show() {
    const b = buildings.find((x) => x.id === chosenBuilding);
    const p = b.payment || {};
    clear(info).append(`${b.timezone} · ${b.currency} · payment: `,
      ['credits', 'invoice', 'card'].filter((k) => p[k]).map((k) => titleCase(k)).join(', ') || 'none',
      p.credits ? '' : ' (credits are off for this building)');
    clear(body);
    const list = await ctx.resources(chosenBuilding);
    const t = sortableTable([
      { key: 'name', label: 'Resource', render: (r) => h('span', {}, h('strong', {}, r.name), h('span', { class: 'sub block' }, titleCase(r.kind))) },
      { key: 'tags', label: 'Tags', value: (r) => (r.tags || []).join(', '), render: (r) => h('span', { class: 'tags' }, (r.tags || []).map((t) => h('span', { class: 'tag' }, t))) },
      { key: 'money', label: 'Money price', num: true, value: (r) => moneyPerHour(r), render: (r) => (r.credit_only ? h('span', { class: 'muted' }, 'Credits only') : moneyPerHour(r) == null ? '—' : `${fmtMoney(moneyPerHour(r), b.currency)} / h`) },
      { key: 'credits', label: 'Credit price', value: (r) => creditSummary(r), render: (r) => creditSummary(r) || h('span', { class: 'badge badge-muted' }, 'Credits off') },
      { key: 'credit_only', label: 'Credit only', value: (r) => (r.credit_only ? 'Yes' : 'No') },
      { key: 'edit', label: 'Actions', sortable: false, render: (r) => h('button', {
        type: 'button', class: 'btn btn-secondary btn-small', 'data-edit': r.id, 'aria-label': `Edit credit settings for ${r.name}`,
        disabled: !ctx.canAssign, onclick: () => dialog.open(r, b),
      }, 'Edit') },
    ], list, { caption: `Resources in ${b.name}`, sortKey: 'name', rowAttrs: (r) => ({ 'data-resource': r.id }),
      empty: emptyState('No resources in this building', 'Resources are created through the API.') });
    body.append(t.el);
    if (!ctx.canAssign) body.append(h('p', { class: 'table-foot muted' }, 'Your role can view resources but not change them.'));
  }
  await show();
}

function moneyPerHour(r) {
  const m = r.pricing && r.pricing.money;
  return m && typeof m.per_hour === 'number' ? m.per_hour : null;
}

export function creditSummary(r) {
  const c = r.pricing && r.pricing.credits;
  if (!c) return '';
  const u = c.unit || 'hour';
  const inc = c.increment_minutes || (r.pricing.increment_minutes) || 15;
  let price;
  if ((c.model || 'fixed') === 'fixed') price = `${fmtAmount(c.per_hour)} ${unitName(u, c.per_hour)} / h`;
  else if (c.model === 'block') price = `Blocks: ${(c.blocks || []).map((b) => `${fmtAmount(b.minutes / 60)} h = ${fmtAmount(b.price)}`).join(', ')} ${unitName(u, 2)}`;
  else price = `Tiered: ${(c.tiers || []).map((t) => `${fmtAmount(t.per_hour)}/h${t.up_to_minutes ? ` to ${fmtAmount(t.up_to_minutes / 60)} h` : ' after'}`).join(', ')} ${unitName(u, 2)}`;
  return `${price} · ${inc}-min steps${c.max != null ? ` · max ${fmtAmount(c.max)}` : ''}`;
}

function editDialog(ctx, onSaved) {
  const el = h('dialog', { class: 'dialog', 'aria-labelledby': 'edit-title', id: 'resource-dialog' });
  let resource = null;
  let building = null;
  const form = h('form', { method: 'dialog', novalidate: true, class: 'dialog-form' });
  const title = h('h2', { id: 'edit-title', class: 'dialog-title' }, 'Credit settings');
  const enable = h('input', { type: 'checkbox', id: 'edit-enable', 'data-field': 'pricing.credits' });
  const unitSel = select([{ value: 'hour', label: 'Hourly credits' }, { value: 'coin', label: 'Coins' }], { id: 'edit-unit', dataField: 'pricing.credits.unit' });
  const model = select([{ value: 'fixed', label: 'Fixed rate per hour' }, { value: 'block', label: 'Block pricing' }, { value: 'tiered', label: 'Tiered pricing' }],
    { id: 'edit-model', dataField: 'pricing.credits.model' });
  const perHour = h('input', { type: 'text', inputmode: 'decimal', id: 'edit-per-hour', 'data-field': 'pricing.credits.per_hour' });
  const increment = select([15, 30, 60].map((m) => ({ value: m, label: `${m} minutes` })), { id: 'edit-increment', dataField: 'pricing.credits.increment_minutes' });
  const max = h('input', { type: 'text', inputmode: 'decimal', id: 'edit-max', placeholder: 'No maximum', 'data-field': 'pricing.credits.max' });
  const creditOnly = h('input', { type: 'checkbox', id: 'edit-credit-only', 'data-field': 'credit_only' });
  const money = h('input', { type: 'text', inputmode: 'decimal', id: 'edit-money', placeholder: 'No money price', 'data-field': 'pricing.money.per_hour' });
  const moneyLabel = h('label', { for: 'edit-money' }, 'Money price per hour');
  const blocks = h('div', { class: 'rows', id: 'edit-blocks' });
  const tiers = h('div', { class: 'rows', id: 'edit-tiers' });
  const addBlock = h('button', { type: 'button', class: 'btn btn-ghost btn-small' }, '+ Add block');
  const addTier = h('button', { type: 'button', class: 'btn btn-ghost btn-small' }, '+ Add tier');
  const fixedBox = h('div', { class: 'field' }, h('label', { for: 'edit-per-hour' }, 'Credits per hour'), perHour,
    h('div', { class: 'hint' }, 'e.g. 1 (one hour of credit per hour) or 70 (70 coins per hour).'), errorSlot('pricing.credits.per_hour'));
  const blockBox = h('div', { class: 'field' }, h('span', { class: 'label' }, 'Blocks'), blocks, addBlock,
    h('div', { class: 'hint' }, 'A booking pays the cheapest block that covers it, e.g. 240 minutes = 3, 480 minutes = 5.'), errorSlot('pricing.credits.blocks'));
  const tierBox = h('div', { class: 'field' }, h('span', { class: 'label' }, 'Tiers'), tiers, addTier,
    h('div', { class: 'hint' }, 'Rates that change with duration; leave the last tier\'s limit empty.'), errorSlot('pricing.credits.tiers'));
  const creditFields = h('fieldset', { class: 'subfields' }, h('legend', { class: 'sr-only' }, 'Credit pricing'),
    h('div', { class: 'grid-2' },
      h('div', { class: 'field' }, h('label', { for: 'edit-unit' }, 'Unit'), unitSel, errorSlot('pricing.credits.unit')),
      h('div', { class: 'field' }, h('label', { for: 'edit-model' }, 'Pricing model'), model, errorSlot('pricing.credits.model'))),
    fixedBox, blockBox, tierBox,
    h('div', { class: 'grid-2' },
      h('div', { class: 'field' }, h('label', { for: 'edit-increment' }, 'Booking increment'), increment, errorSlot('pricing.credits.increment_minutes')),
      h('div', { class: 'field' }, h('label', { for: 'edit-max' }, 'Maximum credits per booking'), max, errorSlot('pricing.credits.max'))));
  const cancel = h('button', { type: 'button', class: 'btn btn-ghost' }, 'Cancel');
  const save = h('button', { type: 'submit', class: 'btn btn-primary', id: 'edit-save' }, 'Save');
  form.append(title, h('p', { class: 'muted', id: 'edit-sub' }),
    h('div', { class: 'field-error form-error', 'data-error-for': '', role: 'alert', hidden: true }),
    h('label', { class: 'check switch' }, enable, h('span', {}, 'Enable credit usage')),
    errorSlot('pricing.credits'),
    creditFields,
    h('label', { class: 'check' }, creditOnly, h('span', {}, 'Credit only (no money price; only people with credits can book)')),
    h('div', { class: 'field' }, moneyLabel, money, errorSlot('pricing.money.per_hour')),
    errorSlot('pricing'),
    h('div', { class: 'dialog-actions' }, cancel, save));
  el.append(form);

  function row(container, cells) {
    const r = h('div', { class: 'row-inline' });
    for (const [label, value, cls] of cells) {
      const id = uid('c');
      r.append(h('div', { class: `field ${cls || ''}` }, h('label', { for: id }, label), h('input', { type: 'text', inputmode: 'decimal', id, value: value ?? '' })));
    }
    r.append(h('button', { type: 'button', class: 'btn btn-ghost btn-small', 'aria-label': 'Remove', onclick: () => r.remove() }, '×'));
    container.append(r);
  }
  addBlock.addEventListener('click', () => row(blocks, [['Minutes', ''], ['Price', '']]));
  addTier.addEventListener('click', () => row(tiers, [['Up to minutes', ''], ['Per hour', '']]));

  function sync() {
    creditFields.disabled = !enable.checked;
    creditFields.hidden = !enable.checked;
    fixedBox.hidden = model.value !== 'fixed';
    blockBox.hidden = model.value !== 'block';
    tierBox.hidden = model.value !== 'tiered';
    money.disabled = creditOnly.checked;
  }
  for (const c of [enable, model, creditOnly]) c.addEventListener('change', sync);
  cancel.addEventListener('click', () => el.close());

  const num = (v) => (v.trim() === '' ? null : Number(v.trim()));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    const pricing = JSON.parse(JSON.stringify(resource.pricing || {}));
    if (enable.checked) {
      const c = { ...(pricing.credits || {}) };
      c.unit = unitSel.value;
      c.model = model.value;
      c.increment_minutes = Number(increment.value);
      delete c.per_hour; delete c.blocks; delete c.tiers;
      if (c.model === 'fixed') c.per_hour = num(perHour.value);
      if (c.model !== 'fixed') delete c.peak;
      if (c.model === 'block') {
        c.blocks = [...blocks.querySelectorAll('.row-inline')].map((r) => {
          const [m, p] = r.querySelectorAll('input');
          return { minutes: num(m.value), price: num(p.value) };
        });
      }
      if (c.model === 'tiered') {
        c.tiers = [...tiers.querySelectorAll('.row-inline')].map((r) => {
          const [m, p] = r.querySelectorAll('input');
          const t = { per_hour: num(p.value) };
          if (m.value.trim() !== '') t.up_to_minutes = num(m.value);
          return t;
        });
      }
      const mx = num(max.value);
      if (mx === null) delete c.max; else c.max = mx;
      pricing.credits = c;
    } else {
      pricing.credits = null;
    }
    if (!creditOnly.checked) {
      const m = money.value.trim();
      pricing.money = m === '' ? null : { ...(pricing.money || {}), per_hour: toMinor(m, building.currency) };
    }
    await busy(save, async () => {
      try {
        const out = await patch(`/v1/resources/${resource.id}`, { pricing, credit_only: creditOnly.checked }, newIdempotencyKey());
        ctx.forget('resources');
        el.close();
        toast(`Saved credit settings for ${out.name || resource.name}`);
        onSaved();
      } catch (err) {
        showError(form, err);
      }
    }, 'Saving…');
  });

  return {
    el,
    open(r, b) {
      resource = r;
      building = b;
      clearErrors(form);
      const c = (r.pricing && r.pricing.credits) || null;
      title.textContent = `Credit settings · ${r.name}`;
      form.querySelector('#edit-sub').textContent = `${b.name} · ${titleCase(r.kind)}`;
      enable.checked = !!c;
      unitSel.value = (c && c.unit) || 'hour';
      model.value = (c && c.model) || 'fixed';
      perHour.value = c && c.per_hour != null ? String(c.per_hour) : '1';
      const inc = (c && c.increment_minutes) || (r.pricing && r.pricing.increment_minutes) || 30;
      if (![...increment.options].some((o) => o.value === String(inc))) increment.append(h('option', { value: inc }, `${inc} minutes`));
      increment.value = String(inc);
      max.value = c && c.max != null ? String(c.max) : '';
      creditOnly.checked = !!r.credit_only;
      const m = moneyPerHour(r);
      money.value = m == null ? '' : String(fromMinor(m, b.currency));
      moneyLabel.textContent = `Money price per hour (${b.currency})`;
      clear(blocks);
      clear(tiers);
      for (const bl of (c && c.blocks) || []) row(blocks, [['Minutes', bl.minutes], ['Price', bl.price]]);
      for (const t of (c && c.tiers) || []) row(tiers, [['Up to minutes', t.up_to_minutes], ['Per hour', t.per_hour]]);
      if (!blocks.children.length) row(blocks, [['Minutes', 240], ['Price', '']]);
      if (!tiers.children.length) row(tiers, [['Up to minutes', 120], ['Per hour', '']]);
      sync();
      el.showModal();
      enable.focus();
    },
  };
}
