// assign.js - "Assign credits": the six steps of the operators' help page
// as one form. 1 tenant, buildings and description; 2 credit lines (all
// resources and/or specific resources, combinable; an amount or Unlimited
// for hours); 3 recipients; 4 schedule; 5 pool; 6 Assign -> POST
// /v1/allocations. The server validates; its errors appear beside the field
// they name (details.field).
import { post, newIdempotencyKey } from '../api.js';
import {
  h, clear, pageHeader, errorSlot, clearErrors, showError, showErrors, clearFieldError, select, uid, fmtCredits,
  fmtDate, RECURRENCE_LABEL, notice, emptyState, titleCase, localDate, busy,
} from '../ui.js';

export async function render(page, ctx) {
  if (!ctx.canAssign) {
    page.append(pageHeader('Assign credits'), notice('Only a super admin or a manager may assign credits.', 'info'));
    return;
  }
  const [tenants, buildings] = await Promise.all([ctx.tenants(), ctx.buildings()]);
  const bmap = new Map(buildings.map((b) => [b.id, b]));
  // "Today" is the server's (its clock may be a test clock), in the zone of
  // the first building.
  const serverToday = () => localDate(ctx.serverNow().toISOString(), buildings[0] ? buildings[0].timezone : 'UTC');
  page.append(pageHeader('Assign credits', 'Grant booking credits to a tenant company and its people.'));
  if (!tenants.length) {
    page.append(emptyState('No tenants yet', 'Create a tenant before assigning credits.'));
    return;
  }

  const form = h('form', { class: 'assign-form', novalidate: true, id: 'assign-form' });
  const formError = h('div', { class: 'field-error form-error', 'data-error-for': '', role: 'alert', hidden: true });
  form.append(formError);

  // ---------- 1. tenant ----------
  const tenantSel = select([{ value: '', label: 'Choose a tenant…' }, ...tenants.map((t) => ({ value: t.id, label: t.name }))],
    { id: 'assign-tenant', dataField: 'tenant_id' });
  const buildingsBox = h('div', { class: 'checks', role: 'group', 'aria-labelledby': 'assign-buildings-label' });
  const crossBox = h('div', { class: 'field', hidden: true });
  const crossInput = h('input', { type: 'checkbox', id: 'assign-cross', 'data-field': 'cross_building' });
  crossBox.append(h('label', { class: 'check' }, crossInput, h('span', {}, 'Enable credits for cross-building booking'),
  ), h('div', { class: 'hint' }, 'This tenant may book in all its buildings; with this on, these credits pay in every one of them.'));
  const desc = h('input', { type: 'text', id: 'assign-description', maxlength: '500', 'data-field': 'description',
    placeholder: 'e.g. Q1 conference room allocation' });
  const unitGroup = h('div', { class: 'segmented', role: 'radiogroup', 'aria-labelledby': 'assign-unit-label' });
  for (const [v, label] of [['hour', 'Hourly credits'], ['coin', 'Coins']]) {
    const id = `assign-unit-${v}`;
    unitGroup.append(h('input', { type: 'radio', name: 'unit', id, value: v, checked: v === 'hour', 'data-field': 'unit' }), h('label', { for: id }, label));
  }
  form.append(step(1, 'Tenant', 'Who receives the credits, in which buildings.',
    h('div', { class: 'grid-2' },
      fieldWrap('Tenant', tenantSel, 'tenant_id'),
      h('div', { class: 'field' }, h('span', { class: 'label', id: 'assign-unit-label' }, 'Unit'), unitGroup,
        h('div', { class: 'hint' }, 'Hourly credits pay by the hour; coins are money-like.'), errorSlot('unit'))),
    h('div', { class: 'field' }, h('span', { class: 'label', id: 'assign-buildings-label' }, 'Buildings'), buildingsBox, errorSlot('building_ids')),
    crossBox,
    fieldWrap('Description (optional)', desc, 'description', 'Shown in credit management and to the tenant, e.g. “Yearly credits”.')));

  // ---------- 2. lines ----------
  const allOn = h('input', { type: 'checkbox', id: 'line-all-on', checked: true });
  const allAmount = amountInput('line-all-amount');
  const allUnlimited = h('input', { type: 'checkbox', id: 'line-all-unlimited', 'data-field': 'lines.amount' });
  const allRow = h('div', { class: 'line line-all' },
    h('label', { class: 'check line-toggle' }, allOn, h('span', {}, h('strong', {}, 'All resources'), h('span', { class: 'sub' }, ' — usable for any bookable resource'))),
    h('div', { class: 'line-fields' },
      h('div', { class: 'field field-amount' }, h('label', { for: 'line-all-amount' }, 'Amount'), allAmount),
      h('label', { class: 'check unlimited-check' }, allUnlimited, h('span', {}, 'Unlimited'))));
  const specificList = h('div', { class: 'lines-specific', id: 'lines-specific' });
  const addLineBtn = h('button', { type: 'button', class: 'btn btn-secondary btn-small', id: 'add-line' }, '+ Add specific-resource line');
  form.append(step(2, 'Credits', 'An amount for all resources, for specific resources, or both.',
    allRow, specificList, errorSlot('lines'), addLineBtn));

  // ---------- 3. recipients ----------
  const targetGroup = h('div', { class: 'radios', role: 'radiogroup', 'aria-labelledby': 'assign-target-label' });
  const targetDetail = h('div', { class: 'target-detail' });
  for (const [v, label, hint] of [
    ['all', 'All users', 'Everyone in the tenant company'],
    ['users', 'Specific users', 'Pick people by name'],
    ['roles', 'Specific roles', 'People holding given roles'],
  ]) {
    const id = `assign-target-${v}`;
    targetGroup.append(h('label', { class: 'radio-card', for: id },
      h('input', { type: 'radio', name: 'targeting', id, value: v, checked: v === 'all', 'data-field': 'targeting.type' }),
      h('span', {}, h('strong', {}, label), h('span', { class: 'sub' }, hint))));
  }
  form.append(step(3, 'Recipients', 'Who within the tenant may spend them.',
    h('span', { class: 'label', id: 'assign-target-label' }, 'Give to'), targetGroup, targetDetail, errorSlot('targeting')));

  // ---------- 4. schedule ----------
  const start = h('input', { type: 'date', id: 'assign-start', value: serverToday(), required: true, 'data-field': 'schedule.start' });
  const end = h('input', { type: 'date', id: 'assign-end', 'data-field': 'schedule.end' });
  const recurrence = select(Object.entries(RECURRENCE_LABEL).map(([value, label]) => ({ value, label })),
    { id: 'assign-recurrence', value: 'none', dataField: 'schedule.recurrence' });
  const rollover = h('input', { type: 'checkbox', id: 'assign-rollover', 'data-field': 'schedule.rollover' });
  const cap = h('input', { type: 'text', inputmode: 'decimal', id: 'assign-cap', 'data-field': 'schedule.rollover.cap', placeholder: 'No cap' });
  const rolloverBox = h('div', { class: 'rollover' },
    h('label', { class: 'check' }, rollover, h('span', {}, 'Allow credit rollover'),
    ), h('div', { class: 'hint' }, 'Unused credits carry into the next period; otherwise they expire at period end (use it or lose it).'),
    h('div', { class: 'field field-cap' }, h('label', { for: 'assign-cap' }, 'Rollover cap (optional)'), cap, errorSlot('schedule.rollover.cap')),
    errorSlot('schedule.rollover'));
  form.append(step(4, 'Schedule', 'When the credits become available, and how often.',
    h('div', { class: 'grid-3' },
      fieldWrap('Start date', start, 'schedule.start'),
      fieldWrap('End date (optional)', end, 'schedule.end', 'Credits expire after this date.'),
      fieldWrap('Recurrence', recurrence, 'schedule.recurrence', 'Once, or a new amount each period.')),
    rolloverBox, errorSlot('schedule')));

  // ---------- 5. pool ----------
  const poolGroup = h('div', { class: 'radios', role: 'radiogroup', 'aria-labelledby': 'assign-pool-label' });
  for (const [v, label, hint] of [
    ['shared', 'Shared pool', 'One balance for the company; any recipient spends from it'],
    ['per_user', 'Per user', 'Each recipient gets the full amount'],
  ]) {
    const id = `assign-pool-${v}`;
    poolGroup.append(h('label', { class: 'radio-card', for: id },
      h('input', { type: 'radio', name: 'pool', id, value: v, checked: v === 'shared', 'data-field': 'pool' }),
      h('span', {}, h('strong', {}, label), h('span', { class: 'sub' }, hint))));
  }
  form.append(step(5, 'Pool', 'How the amount is shared among recipients.',
    h('span', { class: 'label', id: 'assign-pool-label' }, 'Pool'), poolGroup, errorSlot('pool')));

  // ---------- 6. assign ----------
  const summary = h('p', { class: 'summary', id: 'assign-summary', 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-large', id: 'assign-submit' }, 'Assign credits');
  form.append(h('section', { class: 'step step-final' },
    h('div', { class: 'step-num', 'aria-hidden': 'true' }, '6'),
    h('div', { class: 'step-body' }, h('h2', { class: 'step-title' }, 'Review and assign'), summary, submit)));

  const result = h('div', { id: 'assign-result' });
  page.append(result, form);

  // ---------- behaviour ----------
  let tenantUsers = [];
  let resources = [];
  let idemKey = newIdempotencyKey();

  const unit = () => form.querySelector('input[name=unit]:checked').value;
  const target = () => form.querySelector('input[name=targeting]:checked').value;
  const pool = () => form.querySelector('input[name=pool]:checked').value;
  const tenant = () => tenants.find((t) => t.id === tenantSel.value);
  const chosenBuildings = () => [...buildingsBox.querySelectorAll('input:checked')].map((i) => i.value);

  function amountInput(id) {
    return h('input', { type: 'text', inputmode: 'decimal', id, 'data-field': 'lines.amount', placeholder: 'e.g. 10', autocomplete: 'off' });
  }

  function addSpecificLine() {
    const id = uid('line');
    const resSel = h('select', { id: `${id}-res`, multiple: true, size: '4', 'data-field': 'lines.resource_ids' });
    fillResources(resSel);
    const amount = amountInput(`${id}-amount`);
    const unl = h('input', { type: 'checkbox', id: `${id}-unl`, class: 'line-unlimited' });
    const remove = h('button', { type: 'button', class: 'btn btn-ghost btn-small', 'aria-label': 'Remove this line' }, 'Remove');
    const row = h('div', { class: 'line line-specific', 'data-line': id },
      h('div', { class: 'line-fields' },
        h('div', { class: 'field field-resources' }, h('label', { for: `${id}-res` }, 'Specific resources'), resSel,
          h('div', { class: 'hint' }, 'Hold Ctrl (⌘ on a Mac) to pick several.')),
        h('div', { class: 'field field-amount' }, h('label', { for: `${id}-amount` }, 'Amount'), amount),
        h('label', { class: 'check unlimited-check' }, unl, h('span', {}, 'Unlimited')),
        remove));
    remove.addEventListener('click', () => { row.remove(); updateSummary(); addLineBtn.focus(); });
    for (const el of [resSel, amount, unl]) el.addEventListener('input', () => { syncUnlimited(); updateSummary(); });
    unl.addEventListener('change', () => { syncUnlimited(); updateSummary(); });
    specificList.append(row);
    syncUnlimited();
    resSel.focus();
  }

  function fillResources(sel) {
    const keep = new Set([...sel.selectedOptions].map((o) => o.value));
    clear(sel);
    const chosen = chosenBuildings();
    for (const r of resources.filter((x) => chosen.includes(x.building_id))) {
      const b = bmap.get(r.building_id);
      const cu = r.pricing && r.pricing.credits ? (r.pricing.credits.unit || 'hour') : null;
      const note = cu ? (cu === unit() ? '' : ` (paid in ${cu}s)`) : ' (no credit price)';
      sel.append(h('option', { value: r.id, selected: keep.has(r.id) }, `${r.name}${chosen.length > 1 ? ` · ${b ? b.name : ''}` : ''}${note}`));
    }
  }

  function syncUnlimited() {
    const coins = unit() === 'coin';
    for (const row of form.querySelectorAll('.line')) {
      const unl = row.querySelector('.unlimited-check input');
      const amt = row.querySelector('.field-amount input');
      unl.closest('.unlimited-check').hidden = coins;
      if (coins) unl.checked = false;
      amt.disabled = unl.checked;
      if (unl.checked) amt.value = '';
    }
    allAmount.disabled = allAmount.disabled || !allOn.checked;
    allUnlimited.disabled = !allOn.checked;
    allRow.classList.toggle('line-off', !allOn.checked);
  }

  async function onTenant() {
    const t = tenant();
    clear(buildingsBox);
    clear(targetDetail);
    tenantUsers = [];
    if (!t) {
      buildingsBox.append(h('p', { class: 'muted' }, 'Choose a tenant first.'));
      crossBox.hidden = true;
      updateSummary();
      return;
    }
    for (const bid of t.building_ids || []) {
      const b = bmap.get(bid);
      const id = `assign-b-${bid}`;
      buildingsBox.append(h('label', { class: 'check', for: id },
        h('input', { type: 'checkbox', id, value: bid, checked: true, 'data-field': 'building_ids' }),
        h('span', {}, b ? `${b.name}` : bid, b ? h('span', { class: 'sub' }, ` · ${b.timezone}`) : null)));
    }
    crossBox.hidden = !t.cross_building;
    if (!t.cross_building) crossInput.checked = false;
    [tenantUsers, resources] = await Promise.all([ctx.users(t.id), ctx.resources()]);
    for (const sel of specificList.querySelectorAll('select')) fillResources(sel);
    renderTarget();
    updateSummary();
  }

  function renderTarget() {
    clear(targetDetail);
    const kind = target();
    if (kind === 'users') {
      if (!tenantUsers.length) {
        targetDetail.append(h('p', { class: 'muted' }, tenant() ? 'This tenant has no users yet.' : 'Choose a tenant first.'));
      } else {
        const box = h('div', { class: 'checks checks-scroll', role: 'group', 'aria-label': 'Users' });
        for (const u of tenantUsers) {
          const id = `assign-u-${u.id}`;
          box.append(h('label', { class: 'check', for: id },
            h('input', { type: 'checkbox', id, value: u.id, name: 'user_ids', 'data-field': 'targeting.user_ids' }),
            h('span', {}, u.name, h('span', { class: 'sub' }, ` · ${u.email}`))));
        }
        targetDetail.append(box);
      }
      targetDetail.append(errorSlot('targeting.user_ids'));
    } else if (kind === 'roles') {
      const roles = [...new Set(tenantUsers.flatMap((u) => u.roles || []))].sort();
      const box = h('div', { class: 'checks', role: 'group', 'aria-label': 'Roles' });
      for (const r of roles) {
        const id = `assign-r-${r}`;
        box.append(h('label', { class: 'check', for: id },
          h('input', { type: 'checkbox', id, value: r, name: 'roles', 'data-field': 'targeting.roles' }),
          h('span', {}, titleCase(r))));
      }
      if (!roles.length) box.append(h('p', { class: 'muted' }, 'No roles found among this tenant\'s users.'));
      const other = h('input', { type: 'text', id: 'assign-roles-other', placeholder: 'e.g. resource_reservation_reserver', 'data-field': 'targeting.roles' });
      targetDetail.append(box, fieldWrap('Other roles (comma-separated)', other, 'targeting.roles'));
    }
    for (const el of targetDetail.querySelectorAll('input')) el.addEventListener('change', updateSummary);
  }

  // Checks run before sending collect every problem into `errs`, so an
  // empty form shows all its missing fields at once, not one per click.
  function readAmount(input, unlimited, where, errs) {
    if (unlimited && unlimited.checked) return 'unlimited';
    const text = input.value.trim().replace(/,/g, '');
    if (text === '') errs.push(fieldErr('lines.amount', `Enter an amount for ${where}, or choose Unlimited.`, input));
    else if (!/^-?\d+(\.\d+)?$/.test(text)) errs.push(fieldErr('lines.amount', `The amount for ${where} must be a number such as 10 or 1.5.`, input));
    return Number(text);
  }

  function fieldErr(fieldName, message, input) {
    const e = new Error(message);
    e.field = fieldName;
    e.input = input;
    return e;
  }

  function body(errs) {
    const lines = [];
    if (!tenantSel.value) errs.push(fieldErr('tenant_id', 'Choose the tenant that receives the credits.', tenantSel));
    else if (!chosenBuildings().length) {
      errs.push(fieldErr('building_ids', 'Choose at least one building.', buildingsBox.querySelector('input')));
    }
    if (allOn.checked) lines.push({ scope: 'all', amount: readAmount(allAmount, allUnlimited, 'all resources', errs) });
    for (const row of specificList.querySelectorAll('.line-specific')) {
      const sel = row.querySelector('select');
      const ids = [...sel.selectedOptions].map((o) => o.value);
      if (!ids.length) errs.push(fieldErr('lines.resource_ids', 'Pick at least one resource for each specific-resource line.', sel));
      lines.push({ scope: 'resources', resource_ids: ids,
        amount: readAmount(row.querySelector('.field-amount input'), row.querySelector('.line-unlimited'), 'the specific resources', errs) });
    }
    if (!lines.length) errs.push(fieldErr('lines', 'Add at least one credit line: all resources, or specific resources.', allOn));
    if (!start.value) errs.push(fieldErr('schedule.start', 'Choose the date the credits start.', start));
    const targeting = { type: target() };
    if (targeting.type === 'users') targeting.user_ids = [...targetDetail.querySelectorAll('input[name=user_ids]:checked')].map((i) => i.value);
    if (targeting.type === 'roles') {
      const other = (targetDetail.querySelector('#assign-roles-other') || { value: '' }).value.split(',').map((s) => s.trim()).filter(Boolean);
      targeting.roles = [...new Set([...[...targetDetail.querySelectorAll('input[name=roles]:checked')].map((i) => i.value), ...other])];
    }
    const schedule = { start: start.value, end: end.value || null, recurrence: recurrence.value };
    if (recurrence.value !== 'none') {
      const capText = cap.value.trim();
      if (rollover.checked && capText !== '' && !/^\d+(\.\d+)?$/.test(capText)) {
        errs.push(fieldErr('schedule.rollover.cap', 'The rollover cap must be a number, or left empty for no cap.', cap));
      }
      schedule.rollover = { enabled: rollover.checked };
      if (rollover.checked && capText !== '') schedule.rollover.cap = Number(capText);
    }
    const out = {
      tenant_id: tenantSel.value,
      building_ids: chosenBuildings(),
      description: desc.value.trim(),
      unit: unit(),
      lines,
      targeting,
      pool: pool(),
      schedule,
    };
    if (crossInput.checked) out.cross_building = true;
    return out;
  }

  function updateSummary() {
    const t = tenant();
    rolloverBox.hidden = recurrence.value === 'none';
    cap.disabled = !rollover.checked;
    if (!t) {
      summary.textContent = 'Choose a tenant to see a summary.';
      return;
    }
    const u = unit();
    const parts = [];
    if (allOn.checked) parts.push(`${allUnlimited.checked ? 'Unlimited hours' : fmtCredits(Number(allAmount.value) || 0, u)} for all resources`);
    for (const row of specificList.querySelectorAll('.line-specific')) {
      const names = [...row.querySelector('select').selectedOptions].map((o) => o.textContent.split(' · ')[0].replace(/ \(.*\)$/, ''));
      const unl = row.querySelector('.line-unlimited').checked;
      parts.push(`${unl ? 'Unlimited hours' : fmtCredits(Number(row.querySelector('.field-amount input').value) || 0, u)} for ${names.length ? names.join(', ') : 'chosen resources'}`);
    }
    const who = { all: 'all users', users: 'chosen users', roles: 'chosen roles' }[target()];
    const when = recurrence.value === 'none'
      ? `once, from ${fmtDate(start.value)}${end.value ? ` until ${fmtDate(end.value)}` : ''}`
      : `${RECURRENCE_LABEL[recurrence.value].toLowerCase()} from ${fmtDate(start.value)}${end.value ? ` until ${fmtDate(end.value)}` : ''}${rollover.checked ? ', with rollover' : ''}`;
    summary.textContent = `${t.name}: ${parts.join(' + ') || 'no lines yet'} — to ${who} (${pool() === 'per_user' ? 'each' : 'shared'}), ${when}.`;
  }

  tenantSel.addEventListener('change', onTenant);
  allOn.addEventListener('change', () => { allAmount.disabled = !allOn.checked || allUnlimited.checked; syncUnlimited(); updateSummary(); });
  allUnlimited.addEventListener('change', () => { allAmount.disabled = false; syncUnlimited(); updateSummary(); });
  for (const el of form.querySelectorAll('input[name=unit]')) {
    el.addEventListener('change', () => {
      allAmount.disabled = !allOn.checked;
      for (const sel of specificList.querySelectorAll('select')) fillResources(sel);
      syncUnlimited();
      updateSummary();
    });
  }
  for (const el of form.querySelectorAll('input[name=targeting]')) el.addEventListener('change', () => { renderTarget(); updateSummary(); });
  for (const el of form.querySelectorAll('input[name=pool]')) el.addEventListener('change', updateSummary);
  for (const el of [allAmount, desc, start, end, cap]) el.addEventListener('input', updateSummary);
  for (const el of [recurrence, rollover, start, end]) el.addEventListener('change', updateSummary);
  buildingsBox.addEventListener('change', () => { for (const sel of specificList.querySelectorAll('select')) fillResources(sel); updateSummary(); });
  addLineBtn.addEventListener('click', addSpecificLine);
  // Editing anything after an error or a success is a new intention, and
  // takes the error off the field that was edited (a stale "Choose the
  // tenant" must not stay once a tenant is chosen).
  const onEdit = (e) => {
    idemKey = newIdempotencyKey();
    const f = e.target && e.target.dataset ? e.target.dataset.field : '';
    if (f) {
      clearFieldError(form, f);
      if (f.startsWith('lines.')) clearFieldError(form, 'lines');
      if (f === 'tenant_id') clearFieldError(form, 'building_ids');
    }
  };
  form.addEventListener('input', onEdit);
  form.addEventListener('change', onEdit);

  /** After a grant the form starts over, so the same click cannot grant
   *  twice and the next grant does not inherit this one's amounts. */
  async function resetForm() {
    tenantSel.value = '';
    desc.value = '';
    allOn.checked = true;
    allAmount.value = '';
    allAmount.disabled = false;
    allUnlimited.checked = false;
    clear(specificList);
    form.querySelector('#assign-unit-hour').checked = true;
    form.querySelector('#assign-target-all').checked = true;
    form.querySelector('#assign-pool-shared').checked = true;
    start.value = serverToday();
    end.value = '';
    recurrence.value = 'none';
    rollover.checked = false;
    cap.value = '';
    crossInput.checked = false;
    clearErrors(form);
    idemKey = newIdempotencyKey();
    await onTenant();
    syncUnlimited();
    updateSummary();
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    clear(result);
    const errs = [];
    const payload = body(errs);
    if (errs.length) {
      showErrors(form, errs);
      return;
    }
    await busy(submit, async () => {
      try {
        const out = await post('/v1/allocations', payload, idemKey);
        idemKey = newIdempotencyKey();
        ctx.forget('allocations');
        const t = tenant();
        clear(result).append(h('div', { class: 'alert alert-success', role: 'status', id: 'assign-success', tabindex: '-1' },
          h('strong', {}, 'Credits assigned. '),
          `${t ? t.name : 'The tenant'} — ${payload.description || 'allocation'} (${out.id}). `,
          'The form below is cleared for the next grant. ',
          'It now appears in credit management and targeted users can spend it.',
          h('div', { class: 'alert-actions' },
            h('a', { class: 'btn btn-secondary btn-small', href: '#/dashboard' }, 'View in credit management'),
            h('button', { type: 'button', class: 'btn btn-ghost btn-small', onclick: () => ctx.navigate('dashboard') }, 'Done'))));
        await resetForm();
        result.firstChild.focus();
        result.scrollIntoView({ block: 'start' });
      } catch (err) {
        showError(form, err);
      }
    }, 'Assigning…');
  });

  await onTenant();
  syncUnlimited();
  updateSummary();
}

function step(n, title, hint, ...children) {
  return h('section', { class: 'step', 'aria-labelledby': `step-${n}-title` },
    h('div', { class: 'step-num', 'aria-hidden': 'true' }, String(n)),
    h('div', { class: 'step-body' },
      h('h2', { class: 'step-title', id: `step-${n}-title` }, title),
      h('p', { class: 'step-hint' }, hint),
      ...children));
}

function fieldWrap(label, control, errorFor, hint) {
  if (!control.id) control.id = uid('f');
  const hintEl = hint ? h('div', { class: 'hint', id: `${control.id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hintEl, errorFor ? errorSlot(errorFor) : null);
}
