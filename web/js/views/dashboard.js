// dashboard.js - the Credits dashboard: tiles (allocated, used, remaining,
// transactions and active users in the last 30 days, top tenant) over the
// two tabs of the operators' help page: Credit management and Usage reports.
import { get, getAll, post, patch, downloadCsv, newIdempotencyKey } from '../api.js';
import {
  h, clear, tile, fmtAmount, fmtCredits, unitName, fmtDate, fmtMoney, fmtDateTime, sortableTable,
  withLoading, pageHeader, select, methodBadge, statusBadge, RECURRENCE_LABEL, emptyState, toast, busy,
  addDays, localDate, nextPeriodStart, PERIOD_NOUN, barChartSvg, fmtMonth, monthAdd, unitTitle,
} from '../ui.js';

// Filters survive tab switches and visits within the session.
const state = { unit: 'hour', building_id: '', tenant_id: '', from: '', to: '' };

export async function render(page, ctx, params) {
  const [buildings, tenants] = await Promise.all([ctx.buildings(), ctx.tenants()]);
  const bmap = new Map(buildings.map((b) => [b.id, b]));
  let tab = params.tab === 'usage' ? 'usage' : 'credits';

  page.append(pageHeader('Credits dashboard', 'Credits allocated to tenants, how they are used, and by whom.',
    ctx.canAssign ? h('a', { class: 'btn btn-primary', href: '#/assign' }, 'Assign credits') : null));

  // --- filters ---
  const unitGroup = h('div', { class: 'segmented', role: 'radiogroup', 'aria-label': 'Unit' });
  for (const [value, label] of [['hour', 'Hourly credits'], ['coin', 'Coins']]) {
    const id = `dash-unit-${value}`;
    const input = h('input', { type: 'radio', name: 'dash-unit', id, value, checked: state.unit === value });
    // The unit governs every figure on the page: tiles, trend and both tabs.
    input.addEventListener('change', () => { state.unit = value; refresh(); });
    unitGroup.append(input, h('label', { for: id }, label));
  }
  const bSel = select([{ value: '', label: 'All buildings' }, ...buildings.map((b) => ({ value: b.id, label: b.name }))],
    { value: state.building_id, id: 'dash-building' });
  const tSel = select([{ value: '', label: 'All tenants' }, ...tenants.map((t) => ({ value: t.id, label: t.name }))],
    { value: state.tenant_id, id: 'dash-tenant' });
  bSel.addEventListener('change', () => { state.building_id = bSel.value; refresh(); });
  tSel.addEventListener('change', () => { state.tenant_id = tSel.value; refresh(); });
  page.append(h('div', { class: 'filters' },
    h('div', { class: 'filter' }, h('span', { class: 'filter-label', id: 'dash-unit-label' }, 'Unit'), unitGroup),
    h('div', { class: 'filter' }, h('label', { for: 'dash-building', class: 'filter-label' }, 'Building'), bSel),
    h('div', { class: 'filter' }, h('label', { for: 'dash-tenant', class: 'filter-label' }, 'Tenant'), tSel)));

  const tiles = h('div', { class: 'tiles tiles-6', 'aria-live': 'polite', id: 'dashboard-tiles' });
  const trend = h('section', { class: 'card trend', id: 'dashboard-trend', 'aria-labelledby': 'trend-title' });
  page.append(tiles, trend);

  // --- tabs ---
  const tabs = [['credits', 'Credit management'], ['usage', 'Usage reports']];
  const tablist = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Dashboard tabs' });
  const panel = h('div', { class: 'tab-panel', role: 'tabpanel', id: 'dash-panel', tabindex: '0' });
  const tabButtons = tabs.map(([key, label]) => {
    const b = h('button', { type: 'button', role: 'tab', id: `tab-${key}`, 'aria-controls': 'dash-panel', class: 'tab' }, label);
    b.addEventListener('click', () => selectTab(key, true));
    b.addEventListener('keydown', (e) => {
      if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft') return;
      const i = tabs.findIndex(([k]) => k === key);
      const next = tabs[(i + (e.key === 'ArrowRight' ? 1 : tabs.length - 1)) % tabs.length][0];
      selectTab(next, true);
      document.getElementById(`tab-${next}`).focus();
    });
    tablist.append(b);
    return [key, b];
  });
  page.append(h('section', { class: 'card card-flush' }, tablist, panel));

  function selectTab(key, push) {
    tab = key;
    for (const [k, b] of tabButtons) {
      b.setAttribute('aria-selected', String(k === key));
      b.tabIndex = k === key ? 0 : -1;
    }
    panel.setAttribute('aria-labelledby', `tab-${key}`);
    if (push) history.replaceState(null, '', key === 'usage' ? '#/dashboard/usage' : '#/dashboard');
    loadPanel();
  }

  function filterQuery() {
    return { building_id: state.building_id, tenant_id: state.tenant_id };
  }
  const panelQuery = () => ({ ...filterQuery(), unit: state.unit });

  function loadTiles() {
    withLoading(tiles, () => get('/v1/reports/dashboard', { unit: state.unit, ...filterQuery() }), (d) => {
      const u = d.unit || state.unit;
      // A figure an unlimited grant touches is the string "unlimited"
      // (fmtAmount shows "Unlimited"), as in the Data Hub.
      tiles.append(
        tile('Credits allocated', fmtAmount(d.allocated), d.allocated === 'unlimited' ? `${unitName(u, 2)}, includes unlimited grants` : unitName(u, 2), { key: 'allocated' }),
        tile('Credits used', fmtAmount(d.used), `${unitName(u, 2)}, net of refunds`, { key: 'used' }),
        tile('Credits remaining', fmtAmount(d.remaining), `${unitName(u, 2)} available now`, { key: 'remaining' }),
        tile('Transactions', fmtAmount(d.transactions_30d), 'credit bookings, last 30 days', { key: 'transactions' }),
        tile('Active users', fmtAmount(d.active_users_30d), 'booked with credits, last 30 days', { key: 'active_users' }),
        tile('Top tenant', d.top_tenant ? d.top_tenant.name : '—',
          d.top_tenant ? `${fmtCredits(d.top_tenant.used, u)} used, last 30 days` : 'no credit use in the last 30 days',
          { key: 'top_tenant', accent: true }));
    }, 'Loading figures…');
  }

  function loadPanel() {
    clear(panel);
    if (tab === 'usage') usagePanel(panel, bmap, panelQuery);
    else creditsPanel(panel, bmap, panelQuery, ctx, loadPanel);
  }

  // Granted vs used per month for the last six months, summed over the
  // customers the filters show (the Data Hub's months; no extra route).
  function loadTrend() {
    const u = state.unit;
    withLoading(trend, async () => {
      const probe = await get('/v1/reports/datahub', { unit: u, ...filterQuery() });
      return get('/v1/reports/datahub', { unit: u, from: monthAdd(probe.to, -5), to: probe.to, ...filterQuery() });
    }, (d) => {
      const months = [];
      for (let m = d.from; m <= d.to; m = monthAdd(m, 1)) months.push(m);
      const granted = months.map(() => 0);
      const used = months.map(() => 0);
      const unlimited = months.map(() => false);
      for (const c of d.customers || []) {
        for (const row of c.months || []) {
          const i = months.indexOf(row.month);
          if (i < 0) continue;
          if (row.total_granted === 'unlimited') unlimited[i] = true;
          else granted[i] += Number(row.total_granted) || 0;
          used[i] += Number(row.total_used) || 0;
        }
      }
      const r3 = (x) => Math.round(x * 1000) / 1000;
      const words = months.map((m, i) => `${fmtMonth(m)}: granted ${unlimited[i] ? 'unlimited' : fmtAmount(r3(granted[i]))}, used ${fmtAmount(r3(used[i]))}`).join('; ');
      trend.append(h('div', { class: 'section-head' },
        h('h2', { class: 'card-title', id: 'trend-title' }, `${unitTitle(u)} granted and used, last 6 months`),
        h('div', { class: 'legend', 'aria-hidden': 'true' },
          h('span', { class: 'legend-item legend-granted' }, 'Granted'), h('span', { class: 'legend-item legend-used' }, 'Used'))),
      barChartSvg(months.map((m, i) => `${fmtMonth(m)}${unlimited[i] ? ' *' : ''}`), [
        { label: 'Granted', values: granted.map(r3), cls: 'trend-granted' },
        { label: 'Used', values: used.map(r3), cls: 'trend-used' },
      ], { title: `Granted and used per month. ${words}`, width: trend.clientWidth ? trend.clientWidth - 40 : 880 }));
      if (unlimited.some(Boolean)) trend.append(h('p', { class: 'muted small' }, '* the month includes unlimited grants; the bar shows the limited part.'));
    }, 'Loading the trend…');
  }

  function refresh() {
    loadTiles();
    loadTrend();
    loadPanel();
  }

  loadTiles();
  loadTrend();
  selectTab(tab, false);
}

function exportButton(label, path, query, filename) {
  const b = h('button', { type: 'button', class: 'btn btn-secondary', 'data-export': filename }, h('span', { 'aria-hidden': 'true' }, '⇩ '), label);
  b.addEventListener('click', () => busy(b, async () => {
    try {
      await downloadCsv(path, query(), filename);
      toast(`Exported ${filename}`);
    } catch (err) {
      toast(`Export failed: ${err.message}`, 'error');
    }
  }, 'Exporting…'));
  return b;
}

function creditsPanel(panel, bmap, filterQuery, ctx, reload) {
  const body = h('div', {});
  const endDialog = endAllocationDialog(ctx, bmap, reload);
  const editDialog = editAllocationDialog(ctx, reload);
  panel.append(
    h('div', { class: 'panel-toolbar' },
      h('p', { class: 'muted' }, `Every ${unitName(state.unit, 1)} allocation with its schedule, when its credits expire and what became of them.`),
      exportButton('Export CSV', '/v1/reports/credits', filterQuery, 'credit-management.csv')),
    body, endDialog.el, editDialog.el);
  const buildingNames = (ids) => (ids || []).map((id) => (bmap.get(id) || { name: id }).name).join(', ');
  const amountText = (r) => (r.amount === 'unlimited' ? 'Unlimited' : fmtCredits(r.amount, r.unit));
  const now = ctx.serverNow();
  withLoading(body, async () => {
    const q = filterQuery();
    // The report has no expired figure: the ledger's expire entries give
    // it, per allocation (operators may read the ledger).
    const [out, expiries] = await Promise.all([
      get('/v1/reports/credits', q),
      getAll('/v1/entries', { kind: 'expire', tenant_id: q.tenant_id }),
    ]);
    const expired = new Map();
    for (const e of expiries) {
      if (e.unit && e.unit !== state.unit) continue;
      expired.set(e.allocation_id, (expired.get(e.allocation_id) || 0) - Number(e.amount || 0));
    }
    return { rows: (out.data || []).filter((r) => !r.unit || r.unit === state.unit), expired };
  }, ({ rows, expired }) => {
    const r3 = (x) => Math.round(x * 1000) / 1000;
    for (const r of rows) {
      r.expired = r.amount === 'unlimited' ? 0 : r3(expired.get(r.allocation_id) || 0);
      // Bookings may be paid from a period that has not begun yet (its
      // grant is not counted until it begins): said beside Used, so the
      // four columns still add up.
      const ahead = r.amount !== 'unlimited' && typeof r.granted === 'number' && typeof r.used === 'number' && typeof r.remaining === 'number'
        ? r3(r.used + r.expired + r.remaining - r.granted) : 0;
      r.ahead = ahead > 0 ? ahead : 0;
      r.expiry = expiryOf(r, bmap, now);
    }
    const t = sortableTable([
      { key: 'tenant_name', label: 'Tenant', title: 'Tenant and description', render: (r) => h('span', {}, h('strong', {}, r.tenant_name),
        h('span', { class: 'block' }, r.description || h('span', { class: 'muted' }, 'No description')),
        h('span', { class: 'sub block' }, buildingNames(r.building_ids))) },
      { key: 'amount', label: 'Amount', num: true, value: (r) => r.amount, render: (r) => h('span', {}, amountText(r),
        h('span', { class: 'sub block' }, [RECURRENCE_LABEL[r.recurrence] || r.recurrence, r.pool === 'per_user' ? 'per user' : 'shared',
          r.rollover ? `rollover${r.rollover_cap != null ? ` ≤ ${fmtAmount(r.rollover_cap)}` : ''}` : null].filter(Boolean).join(' · '))) },
      { key: 'start', label: 'Schedule', title: 'Start date', render: (r) => h('span', { class: 'nowrap' }, fmtDate(r.start),
        h('span', { class: 'sub block' }, r.end ? `ends ${fmtDate(r.end)}` : 'no end date')) },
      { key: 'expires', label: 'Expires', value: (r) => r.expiry.sort, render: (r) => h('span', { class: 'nowrap', 'data-expires': r.expiry.day || 'never' },
        r.expiry.text, r.expiry.sub ? h('span', { class: 'sub block' }, r.expiry.sub) : null) },
      { key: 'granted', label: 'Granted', num: true, value: (r) => r.granted },
      { key: 'used', label: 'Used', num: true, render: (r) => h('span', {}, fmtAmount(r.used),
        r.ahead ? h('span', { class: 'sub block', title: 'Booked ahead from credits of a period that has not begun' }, `${fmtAmount(r.ahead)} ahead`) : null) },
      { key: 'expired', label: 'Expired', num: true, title: 'Expired unused', render: (r) => h('span', { 'data-expired': String(r.expired) }, fmtAmount(r.expired)) },
      { key: 'remaining', label: 'Left', title: 'Remaining', num: true, value: (r) => r.remaining },
      { key: 'status', label: 'Status', render: (r) => statusBadge(r.status) },
      ctx.canAssign ? { key: 'act', label: 'Actions', sortable: false, render: (r) => (r.status === 'active' || r.status === 'upcoming' || r.status === 'scheduled'
        ? h('span', { class: 'button-row' },
          h('button', { type: 'button', class: 'btn btn-secondary btn-small', 'data-edit-allocation': r.allocation_id,
            'aria-label': `Edit ${r.description || 'allocation'} of ${r.tenant_name}`, onclick: () => editDialog.open(r) }, 'Edit…'),
          h('button', { type: 'button', class: 'btn btn-secondary btn-small', 'data-end': r.allocation_id,
            'aria-label': `End ${r.description || 'allocation'} of ${r.tenant_name}`, onclick: () => endDialog.open(r) }, 'End…'))
        : '') } : null,
    ].filter(Boolean), rows, {
      caption: 'Credit allocations', sortKey: 'start', sortDir: 'desc', cls: 'table-credits',
      rowAttrs: (r) => ({ 'data-allocation': r.allocation_id }),
      empty: emptyState(`No ${unitName(state.unit, 1)} allocations`, 'Credits you assign to tenants appear here.'),
    });
    body.append(t.el, h('p', { class: 'table-foot muted' }, `${rows.length} allocation${rows.length === 1 ? '' : 's'}. `,
      'Granted = used + expired + left (“ahead” is use paid from a period that has not begun). ',
      'Edit changes the description at once and amounts from the next period; to change who receives credits, end the allocation and assign a new one.'));
  }, 'Loading allocations…');
}

/** When an allocation's credits expire. A recurring one has no single
 *  expiry: the current period's credits end with the period (unless the
 *  schedule ends sooner); a once one ends at its end date or never. */
function expiryOf(r, bmap, now) {
  const b = bmap.get((r.building_ids || [])[0]);
  const tz = b ? b.timezone : 'UTC';
  const today = localDate(now.toISOString(), tz);
  if (r.recurrence && r.recurrence !== 'none') {
    if (r.status === 'ended' || r.status === 'expired') {
      return { text: r.end ? fmtDate(r.end) : '—', sub: 'ended', sort: r.end || '', day: r.end || '' };
    }
    const from = r.start > today ? r.start : today;
    let day = addDays(nextPeriodStart(from, r.recurrence), -1);
    let sub = `this ${PERIOD_NOUN[r.recurrence]}’s${r.rollover ? ' (rest rolls over)' : ''}`;
    if (r.start > today) sub = `first ${PERIOD_NOUN[r.recurrence]}’s`;
    if (r.end && r.end < day) {
      day = r.end;
      sub = 'the schedule ends';
    }
    return { text: fmtDate(day), sub, sort: day, day };
  }
  const day = r.expires_at ? r.expires_at.slice(0, 10) : r.end;
  return day ? { text: fmtDate(day), sub: '', sort: day, day } : { text: 'Never', sub: 'no end date', sort: '9999', day: '' };
}

/** Ends an allocation (POST /v1/allocations/{id}/end): no new periods
 *  after the date; credits of a period that has begun stay. */
function endAllocationDialog(ctx, bmap, onDone) {
  const el = h('dialog', { class: 'dialog dialog-small', id: 'end-dialog', 'aria-labelledby': 'end-title' });
  const text = h('p', {});
  const date = h('input', { type: 'date', id: 'end-date', 'data-field': 'end', required: true });
  const err = h('div', { class: 'field-error', role: 'alert', hidden: true, id: 'end-error' });
  const keep = h('button', { type: 'button', class: 'btn btn-ghost' }, 'Keep it');
  const confirm = h('button', { type: 'button', class: 'btn btn-danger', id: 'end-confirm' }, 'End allocation');
  el.append(h('div', { class: 'dialog-form' },
    h('h2', { class: 'dialog-title', id: 'end-title' }, 'End this allocation?'), text,
    h('div', { class: 'field' }, h('label', { for: 'end-date' }, 'Last day'), date,
      h('div', { class: 'hint' }, 'No credits are granted for periods after this day. Credits of a period that has begun stay, and paid bookings stay paid.')),
    err, h('div', { class: 'dialog-actions' }, keep, confirm)));
  keep.addEventListener('click', () => el.close());
  let current = null;
  confirm.addEventListener('click', () => busy(confirm, async () => {
    err.hidden = true;
    if (!date.value) {
      err.textContent = 'Choose the last day.';
      err.hidden = false;
      return;
    }
    try {
      await post(`/v1/allocations/${current.row.allocation_id}/end`, { end: date.value }, current.key);
      el.close();
      ctx.forget('allocations');
      toast(`Ended ${current.row.description || 'the allocation'} on ${fmtDate(date.value)}`);
      onDone();
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
    }
  }, 'Ending…'));
  date.addEventListener('input', () => { if (current) current.key = newIdempotencyKey(); });
  return {
    el,
    open(row) {
      current = { row, key: newIdempotencyKey() };
      text.textContent = `${row.tenant_name}: ${row.description || 'allocation'} (${RECURRENCE_LABEL[row.recurrence] || row.recurrence}).`;
      const b = bmap.get((row.building_ids || [])[0]);
      date.value = row.end || localDate(ctx.serverNow().toISOString(), b ? b.timezone : 'UTC');
      err.hidden = true;
      el.showModal();
      date.focus();
    },
  };
}

/** Edits an allocation (PATCH /v1/allocations/{id}): the description at
 *  once, each line's amount from the next period (periods that have begun
 *  keep what they granted). Scopes and recipients are not editable. */
function editAllocationDialog(ctx, onDone) {
  const el = h('dialog', { class: 'dialog dialog-small', id: 'edit-allocation-dialog', 'aria-labelledby': 'edit-allocation-title' });
  const text = h('p', { class: 'muted' });
  const desc = h('input', { type: 'text', id: 'edit-allocation-description', maxlength: '500', 'data-field': 'description' });
  const lines = h('div', { class: 'rows', id: 'edit-allocation-lines' });
  const err = h('div', { class: 'field-error', role: 'alert', hidden: true, id: 'edit-allocation-error' });
  const keep = h('button', { type: 'button', class: 'btn btn-ghost' }, 'Cancel');
  const save = h('button', { type: 'button', class: 'btn btn-primary', id: 'edit-allocation-save' }, 'Save');
  el.append(h('div', { class: 'dialog-form' },
    h('h2', { class: 'dialog-title', id: 'edit-allocation-title' }, 'Edit allocation'), text,
    h('div', { class: 'field' }, h('label', { for: 'edit-allocation-description' }, 'Description'), desc),
    h('div', { class: 'field' }, h('span', { class: 'label' }, 'Amount per period'), lines,
      h('div', { class: 'hint' }, 'New amounts apply from the next period; the current period keeps what it granted.')),
    err, h('div', { class: 'dialog-actions' }, keep, save)));
  keep.addEventListener('click', () => el.close());
  let current = null;
  const scopeText = (l) => (l.scope === 'all' ? 'All resources' : l.scope === 'tags' ? `Tagged ${(l.tags || []).join(', ')}` : `${(l.resource_ids || []).length} resource(s)`);
  save.addEventListener('click', () => busy(save, async () => {
    err.hidden = true;
    const body = {};
    if (desc.value !== (current.alloc.description || '')) body.description = desc.value;
    const inputs = [...lines.querySelectorAll('input')];
    const next = current.alloc.lines.map((l, i) => {
      const v = inputs[i].value.trim();
      const amount = v.toLowerCase() === 'unlimited' ? 'unlimited' : Number(v);
      const line = { scope: l.scope, amount };
      if (l.resource_ids) line.resource_ids = l.resource_ids;
      if (l.tags) line.tags = l.tags;
      return line;
    });
    if (next.some((l) => l.amount !== 'unlimited' && !(l.amount > 0))) {
      err.textContent = 'Each amount must be a positive number (or “unlimited” for hours).';
      err.hidden = false;
      return;
    }
    if (next.some((l, i) => l.amount !== current.alloc.lines[i].amount)) body.lines = next;
    if (!Object.keys(body).length) {
      el.close();
      return;
    }
    try {
      await patch(`/v1/allocations/${current.alloc.id}`, body, newIdempotencyKey());
      el.close();
      ctx.forget('allocations');
      toast(`Saved ${body.description || current.alloc.description || 'the allocation'}`);
      onDone();
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
    }
  }, 'Saving…'));
  return {
    el,
    async open(row) {
      err.hidden = true;
      let alloc;
      try {
        alloc = await get(`/v1/allocations/${row.allocation_id}`);
      } catch (e) {
        toast(e.message, 'error');
        return;
      }
      current = { alloc };
      text.textContent = `${row.tenant_name} · ${RECURRENCE_LABEL[alloc.schedule.recurrence] || alloc.schedule.recurrence}${(alloc.versions || []).length ? ` · edited ${alloc.versions.length} time${alloc.versions.length === 1 ? '' : 's'}` : ''}`;
      desc.value = alloc.description || '';
      clear(lines);
      alloc.lines.forEach((l, i) => {
        const id = `edit-allocation-amount-${i}`;
        lines.append(h('div', { class: 'field' }, h('label', { for: id }, scopeText(l)),
          h('input', { type: 'text', inputmode: 'decimal', id, value: String(l.amount), 'data-field': 'lines' })));
      });
      el.showModal();
      desc.focus();
    },
  };
}

function usagePanel(panel, bmap, filterQuery) {
  // With a unit chosen the report lists the bookings paid in it; invoice
  // and card bookings use no credits, so they are not in either unit.
  const from = h('input', { type: 'date', id: 'usage-from', value: state.from });
  const to = h('input', { type: 'date', id: 'usage-to', value: state.to });
  const body = h('div', {});
  const query = () => {
    const q = filterQuery();
    if (state.from) q.from = `${state.from}T00:00:00Z`;
    if (state.to) q.to = `${addDays(state.to, 1)}T00:00:00Z`;
    return q;
  };
  const reload = () => load();
  from.addEventListener('change', () => { state.from = from.value; reload(); });
  to.addEventListener('change', () => { state.to = to.value; reload(); });
  panel.append(
    h('div', { class: 'panel-toolbar' },
      h('div', { class: 'filters filters-inline' },
        h('div', { class: 'filter' }, h('label', { for: 'usage-from', class: 'filter-label' }, 'From'), from),
        h('div', { class: 'filter' }, h('label', { for: 'usage-to', class: 'filter-label' }, 'To'), to)),
      exportButton('Export CSV', '/v1/reports/usage', query, 'usage-report.csv')),
    body);
  function load() {
    withLoading(body, () => get('/v1/reports/usage', query()), (out) => {
      const rows = (out.data || []).filter((r) => r.unit === state.unit);
      body.append(usageTable(rows, bmap, { showTenant: true }).el,
        h('p', { class: 'table-foot muted' }, `${rows.length} booking${rows.length === 1 ? '' : 's'} paid in ${unitName(state.unit, 2)}. Bookings paid by invoice or card use no credits and are not listed under either unit.`));
    }, 'Loading usage…');
  }
  load();
}

/** The usage rows table, shared with the tenant admin's company page. */
export function usageTable(rows, bmap, { showTenant }) {
  const tz = (r) => (bmap.get(r.building_id) || {}).timezone || 'UTC';
  const cols = [
    { key: 'start', label: 'When', render: (r) => h('span', { class: 'nowrap' }, fmtDateTime(r.start, tz(r))) },
    { key: 'user_name', label: 'User', render: (r) => h('span', {}, r.user_name,
      showTenant ? h('span', { class: 'sub block' }, r.tenant_name) : null) },
    { key: 'resource_name', label: 'Resource', render: (r) => h('span', {}, r.resource_name,
      h('span', { class: 'sub block' }, r.building_name)) },
    { key: 'credits', label: 'Credits', title: 'Credits used (net of refunds)', num: true, render: (r) => (r.credits == null ? '—' : fmtCredits(r.credits, r.unit)) },
    { key: 'credits_refunded', label: 'Refunded', num: true, render: (r) => (r.credits_refunded ? fmtCredits(r.credits_refunded, r.unit) : '—') },
    { key: 'money', label: 'Price', num: true, render: (r) => (r.money == null ? '—' : fmtMoney(r.money, r.currency)) },
    { key: 'payment_method', label: 'Payment', render: (r) => methodBadge(r.payment_method) },
    { key: 'status', label: 'Status', render: (r) => statusBadge(r.status) },
  ].filter(Boolean);
  return sortableTable(cols, rows, {
    caption: 'Usage', sortKey: 'start', sortDir: 'desc', pageSize: 25,
    rowAttrs: (r) => ({ 'data-booking': r.booking_id }),
    empty: emptyState('No bookings in this range', 'Try a wider date range or other filters.'),
  });
}

