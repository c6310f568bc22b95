// resources.js - resources per building and their credit settings: enable
// credit usage, pricing model (fixed / block / tiered), rate, increment,
// maximum per booking, unit, credit-only. Saved with PATCH
// /v1/resources/{id}; the rest of the resource's pricing is kept as it was.
import { patch, post, newIdempotencyKey } from '../api.js';
import {
  h, clear, pageHeader, select, sortableTable, fmtMoney, fmtAmount, unitName, emptyState, errorSlot, clearErrors,
  showError, showErrors, clearErrorsOnEdit, toast, busy, titleCase, fromMinor, toMinor, uid, confirmDialog,
} from '../ui.js';

let chosenBuilding = '';

export async function render(page, ctx) {
  const buildings = await ctx.buildings();
  if (!chosenBuilding || !buildings.some((b) => b.id === chosenBuilding)) chosenBuilding = buildings[0] ? buildings[0].id : '';
  const addBtn = ctx.canAssign ? h('button', { type: 'button', class: 'btn btn-primary', id: 'resource-add' }, '+ Add resource') : null;
  page.append(pageHeader('Resources', 'Bookable spaces per building, and how they can be paid for with credits.', addBtn));
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
  const addDialog = createDialog(ctx, () => show());
  page.append(dialog.el, addDialog.el);
  if (addBtn) addBtn.addEventListener('click', () => addDialog.open(buildings.find((x) => x.id === chosenBuilding)));

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
      { key: 'name', label: 'Resource', render: (r) => h('span', {}, h('strong', {}, r.name), kindLabel(r) ? h('span', { class: 'sub block' }, kindLabel(r)) : null) },
      { key: 'tags', label: 'Tags', value: (r) => (r.tags || []).join(', '), render: (r) => h('span', { class: 'tags' }, (r.tags || []).map((t) => h('span', { class: 'tag' }, t))) },
      { key: 'money', label: 'Money price', num: true, value: (r) => moneyPerHour(r), render: (r) => (r.credit_only ? h('span', { class: 'muted' }, 'Credits only') : moneyPerHour(r) == null ? '—' : `${fmtMoney(moneyPerHour(r), b.currency)} per hour`) },
      { key: 'credits', label: 'Credit price', value: (r) => creditSummary(r), render: (r) => creditSummary(r) || h('span', { class: 'badge badge-muted' }, 'Credits off') },
      { key: 'credit_only', label: 'Credit only', value: (r) => (r.credit_only ? 'Yes' : 'No') },
      { key: 'edit', label: 'Actions', sortable: false, render: (r) => h('span', { class: 'button-row' }, h('button', {
        type: 'button', class: 'btn btn-secondary btn-small', 'data-edit': r.id, 'aria-label': `Edit credit settings for ${r.name}`,
        disabled: !ctx.canAssign, onclick: () => dialog.open(r, b),
      }, 'Edit'), ctx.canAssign ? h('button', {
        type: 'button', class: 'btn btn-danger-ghost btn-small', 'data-archive': r.id, 'aria-label': `Archive ${r.name}`,
        onclick: () => archive(r),
      }, 'Archive') : null) },
    ], list, { caption: `Resources in ${b.name}`, sortKey: 'name', rowAttrs: (r) => ({ 'data-resource': r.id }),
      empty: emptyState('No resources in this building', ctx.canAssign ? 'Add one with “Add resource”.' : 'An operator adds them.') });
    body.append(t.el);
    if (!ctx.canAssign) body.append(h('p', { class: 'table-foot muted' }, 'Your role can view resources but not change them.'));
  }
  /** Archiving keeps the resource's bookings and history; it takes no new
   *  booking and leaves the list (PATCH {"archived": true}). */
  async function archive(r) {
    const sure = await confirmDialog(`Archive ${r.name}?`,
      'It takes no new bookings and leaves this list. Its bookings, including future ones, and its history stay; cancel any future booking you no longer want.',
      'Archive', { danger: true, id: 'archive-confirm' });
    if (!sure) return;
    try {
      await patch(`/v1/resources/${r.id}`, { archived: true }, newIdempotencyKey());
      ctx.forget('resources');
      toast(`${r.name} is archived`);
      await show();
    } catch (err) {
      toast(err.message, 'error');
    }
  }

  await show();
}

function moneyPerHour(r) {
  const m = r.pricing && r.pricing.money;
  return m && typeof m.per_hour === 'number' ? m.per_hour : null;
}

/** The resource's kind in words, or '' when the name already says it
 *  ("Boardroom" of kind boardroom is not "Boardroom Boardroom"). */
export function kindLabel(r) {
  const k = titleCase(r.kind || '');
  if (!k) return '';
  return String(r.name || '').toLowerCase().includes(k.toLowerCase()) ? '' : k;
}

/** Credits in words: "1 credit hour per hour" rather than "1 hour / h". */
function creditUnits(amount, unit) {
  if (unit === 'hour') return `${fmtAmount(amount)} credit ${amount === 1 ? 'hour' : 'hours'}`;
  return `${fmtAmount(amount)} ${unitName(unit, amount)}`;
}

/** The credit price alone, e.g. "1 credit hour per hour" or "70 coins per hour". */
export function creditPrice(r) {
  const c = r.pricing && r.pricing.credits;
  if (!c) return '';
  const u = c.unit || 'hour';
  if ((c.model || 'fixed') === 'fixed') return `${creditUnits(c.per_hour, u)} per hour`;
  if (c.model === 'block') return `Blocks: ${(c.blocks || []).map((b) => `${fmtAmount(b.minutes / 60)} h for ${creditUnits(b.price, u)}`).join(', ')}`;
  return `Tiered: ${(c.tiers || []).map((t) => `${creditUnits(t.per_hour, u)} per hour${t.up_to_minutes ? ` up to ${fmtAmount(t.up_to_minutes / 60)} h` : ' after'}`).join(', ')}`;
}

export function creditSummary(r) {
  const c = r.pricing && r.pricing.credits;
  if (!c) return '';
  const inc = c.increment_minutes || (r.pricing.increment_minutes) || 15;
  return `${creditPrice(r)} · ${inc}-min steps${c.max != null ? ` · max ${creditUnits(c.max, c.unit || 'hour')}` : ''}`;
}

/** A positive number typed by a person ("1.5"), or NaN. */
function positive(text) {
  const t = String(text).trim();
  if (!/^\d+(\.\d{1,3})?$/.test(t)) return NaN;
  const n = Number(t);
  return n > 0 ? n : NaN;
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
  clearErrorsOnEdit(form);

  const num = (v) => (v.trim() === '' ? null : Number(v.trim()));

  /** Everything the page can check before sending: numbers must be
   *  positive numbers ("two" is not silently sent as null). */
  function check() {
    const errs = [];
    const bad = (field, message, input) => errs.push({ field, message, input });
    if (enable.checked) {
      if (model.value === 'fixed' && Number.isNaN(positive(perHour.value))) {
        bad('pricing.credits.per_hour', 'Credits per hour must be a positive number, such as 1 or 1.5.', perHour);
      }
      if (max.value.trim() !== '' && Number.isNaN(positive(max.value))) {
        bad('pricing.credits.max', 'The maximum must be a positive number, or left empty for none.', max);
      }
      const pairs = model.value === 'block' ? blocks : model.value === 'tiered' ? tiers : null;
      if (pairs) {
        const field = model.value === 'block' ? 'pricing.credits.blocks' : 'pricing.credits.tiers';
        const rows = [...pairs.querySelectorAll('.row-inline')];
        if (!rows.length) bad(field, 'Add at least one row.', null);
        rows.forEach((r, i) => {
          const [m, p] = r.querySelectorAll('input');
          const lastTier = model.value === 'tiered' && i === rows.length - 1 && m.value.trim() === '';
          if (!lastTier && !Number.isInteger(positive(m.value))) bad(field, `Row ${i + 1}: minutes must be a whole positive number.`, m);
          if (Number.isNaN(positive(p.value))) bad(field, `Row ${i + 1}: the price must be a positive number.`, p);
        });
      }
    }
    if (!creditOnly.checked && money.value.trim() !== '' && Number.isNaN(positive(money.value))) {
      bad('pricing.money.per_hour', 'The money price must be a positive amount such as 50 or 49.50, or left empty.', money);
    }
    if (creditOnly.checked && !enable.checked) {
      bad('pricing.credits', 'A credit-only resource needs credit usage enabled.', enable);
    }
    return errs;
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    const errs = check();
    if (errs.length) {
      showErrors(form, errs);
      return;
    }
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
      form.querySelector('#edit-sub').textContent = [b.name, kindLabel(r)].filter(Boolean).join(' · ');
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

/** Adds a resource to the chosen building (POST /v1/resources): a name, a
 *  kind, tags, a money price and, optionally, a fixed credit price. Other
 *  pricing models are set afterwards with Edit. */
function createDialog(ctx, onSaved) {
  const el = h('dialog', { class: 'dialog', 'aria-labelledby': 'add-title', id: 'resource-add-dialog' });
  const form = h('form', { method: 'dialog', novalidate: true, class: 'dialog-form' });
  const sub = h('p', { class: 'muted' });
  const name = h('input', { type: 'text', id: 'add-name', maxlength: '200', required: true, 'data-field': 'name', autocomplete: 'off' });
  const kind = select([
    ['meeting_room', 'Meeting room'], ['boardroom', 'Boardroom'], ['conference_centre', 'Conference centre'],
    ['pod', 'Pod or booth'], ['desk', 'Desk'], ['lounge', 'Lounge'], ['roof_deck', 'Roof deck'], ['auditorium', 'Auditorium'],
  ].map(([value, label]) => ({ value, label })), { id: 'add-kind', dataField: 'kind' });
  const tags = h('input', { type: 'text', id: 'add-tags', placeholder: 'e.g. screen, small', 'data-field': 'tags' });
  const money = h('input', { type: 'text', inputmode: 'decimal', id: 'add-money', placeholder: 'No money price', 'data-field': 'pricing.money.per_hour' });
  const moneyLabel = h('label', { for: 'add-money' }, 'Money price per hour');
  const credits = h('input', { type: 'text', inputmode: 'decimal', id: 'add-credits', value: '1', placeholder: 'No credit price', 'data-field': 'pricing.credits.per_hour' });
  const unitSel = select([{ value: 'hour', label: 'Hourly credits' }, { value: 'coin', label: 'Coins' }], { id: 'add-unit', dataField: 'pricing.credits.unit' });
  const increment = select([15, 30, 60].map((m) => ({ value: m, label: `${m} minutes` })), { id: 'add-increment', value: 30, dataField: 'pricing.credits.increment_minutes' });
  const creditOnly = h('input', { type: 'checkbox', id: 'add-credit-only', 'data-field': 'credit_only' });
  const cancel = h('button', { type: 'button', class: 'btn btn-ghost' }, 'Cancel');
  const save = h('button', { type: 'submit', class: 'btn btn-primary', id: 'add-save' }, 'Add resource');
  form.append(h('h2', { class: 'dialog-title', id: 'add-title' }, 'Add a resource'), sub,
    h('div', { class: 'field-error form-error', 'data-error-for': '', role: 'alert', hidden: true }),
    h('div', { class: 'grid-2' },
      h('div', { class: 'field' }, h('label', { for: 'add-name' }, 'Name'), name, errorSlot('name')),
      h('div', { class: 'field' }, h('label', { for: 'add-kind' }, 'Kind'), kind, errorSlot('kind'))),
    h('div', { class: 'field' }, h('label', { for: 'add-tags' }, 'Tags (comma-separated, optional)'), tags, errorSlot('tags')),
    h('div', { class: 'grid-2' },
      h('div', { class: 'field' }, moneyLabel, money, errorSlot('pricing.money.per_hour')),
      h('div', { class: 'field' }, h('label', { for: 'add-increment' }, 'Booking increment'), increment)),
    h('div', { class: 'grid-2' },
      h('div', { class: 'field' }, h('label', { for: 'add-credits' }, 'Credits per hour (empty: no credits)'), credits, errorSlot('pricing.credits.per_hour')),
      h('div', { class: 'field' }, h('label', { for: 'add-unit' }, 'Paid in'), unitSel, errorSlot('pricing.credits.unit'))),
    h('label', { class: 'check' }, creditOnly, h('span', {}, 'Credit only (no money price)')),
    errorSlot('pricing'), errorSlot('credit_only'),
    h('div', { class: 'dialog-actions' }, cancel, save));
  el.append(form);
  let building = null;
  let key = newIdempotencyKey();
  cancel.addEventListener('click', () => el.close());
  creditOnly.addEventListener('change', () => { money.disabled = creditOnly.checked; });
  form.addEventListener('input', () => { key = newIdempotencyKey(); });
  clearErrorsOnEdit(form);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    const errs = [];
    if (!name.value.trim()) errs.push({ field: 'name', message: 'Give the resource a name.', input: name });
    const m = money.value.trim();
    if (!creditOnly.checked && m !== '' && Number.isNaN(positive(m))) {
      errs.push({ field: 'pricing.money.per_hour', message: 'The money price must be a positive amount such as 50, or left empty.', input: money });
    }
    const c = credits.value.trim();
    if (c !== '' && Number.isNaN(positive(c))) {
      errs.push({ field: 'pricing.credits.per_hour', message: 'Credits per hour must be a positive number, such as 1 or 1.5, or left empty.', input: credits });
    }
    if (creditOnly.checked && c === '') {
      errs.push({ field: 'pricing.credits.per_hour', message: 'A credit-only resource needs a credit price.', input: credits });
    }
    if (!creditOnly.checked && m === '' && c === '') {
      errs.push({ field: 'pricing', message: 'Give a money price, a credit price, or both: otherwise nobody can pay for it.', input: money });
    }
    if (errs.length) {
      showErrors(form, errs);
      return;
    }
    const pricing = {
      money: creditOnly.checked || m === '' ? null : { per_hour: toMinor(m, building.currency) },
      credits: c === '' ? null : { unit: unitSel.value, model: 'fixed', per_hour: positive(c), increment_minutes: Number(increment.value) },
    };
    if (!pricing.credits) pricing.increment_minutes = Number(increment.value);
    const body = {
      building_id: building.id, name: name.value.trim(), kind: kind.value,
      tags: tags.value.split(',').map((t) => t.trim()).filter(Boolean), pricing, credit_only: creditOnly.checked,
    };
    await busy(save, async () => {
      try {
        const out = await post('/v1/resources', body, key);
        ctx.forget('resources');
        el.close();
        toast(`Added ${out.name} to ${building.name}`);
        onSaved(out);
      } catch (err) {
        showError(form, err);
      }
    }, 'Adding…');
  });
  return {
    el,
    open(b) {
      building = b;
      key = newIdempotencyKey();
      form.reset();
      clearErrors(form);
      credits.value = '1';
      increment.value = '30';
      money.disabled = false;
      sub.textContent = `In ${b.name} (${b.timezone}, prices in ${b.currency}).`;
      moneyLabel.textContent = `Money price per hour (${b.currency})`;
      el.showModal();
      name.focus();
    },
  };
}
