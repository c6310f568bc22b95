// dashboard.js - the Credits dashboard: tiles (allocated, used, remaining,
// transactions and active users in the last 30 days, top tenant) over the
// two tabs of the operators' help page: Credit management and Usage reports.
import { get, downloadCsv } from '../api.js';
import {
  h, clear, tile, fmtAmount, fmtCredits, unitName, fmtDate, fmtMoney, fmtDateTime, sortableTable,
  withLoading, pageHeader, select, methodBadge, statusBadge, RECURRENCE_LABEL, emptyState, toast, busy,
  addDays,
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
    input.addEventListener('change', () => { state.unit = value; loadTiles(); });
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
  page.append(tiles);

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

  function loadTiles() {
    withLoading(tiles, () => get('/v1/reports/dashboard', { unit: state.unit, ...filterQuery() }), (d) => {
      const u = d.unit || state.unit;
      const unl = d.unlimited ? 'plus unlimited grants' : null;
      tiles.append(
        tile('Credits allocated', fmtAmount(d.allocated), unl || unitName(u, 2), { key: 'allocated' }),
        tile('Credits used', fmtAmount(d.used), `${unitName(u, 2)}, net of refunds`, { key: 'used' }),
        tile('Credits remaining', fmtAmount(d.remaining), unl ? `${unitName(u, 2)} ${unl}` : `${unitName(u, 2)} available now`, { key: 'remaining' }),
        tile('Transactions', fmtAmount(d.transactions_30d), 'credit bookings, last 30 days', { key: 'transactions' }),
        tile('Active users', fmtAmount(d.active_users_30d), 'booked with credits, last 30 days', { key: 'active_users' }),
        tile('Top tenant', d.top_tenant ? d.top_tenant.name : '—',
          d.top_tenant ? `${fmtCredits(d.top_tenant.used, u)} used, last 30 days` : 'no credit use in the last 30 days',
          { key: 'top_tenant', accent: true }));
    }, 'Loading figures…');
  }

  function loadPanel() {
    clear(panel);
    if (tab === 'usage') usagePanel(panel, bmap, filterQuery);
    else creditsPanel(panel, bmap, filterQuery);
  }

  function refresh() {
    loadTiles();
    loadPanel();
  }

  loadTiles();
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

function creditsPanel(panel, bmap, filterQuery) {
  const body = h('div', {});
  panel.append(
    h('div', { class: 'panel-toolbar' },
      h('p', { class: 'muted' }, 'Every allocation with its schedule, expiry and what has been used.'),
      exportButton('Export CSV', '/v1/reports/credits', filterQuery, 'credit-management.csv')),
    body);
  const buildingNames = (ids) => (ids || []).map((id) => (bmap.get(id) || { name: id }).name).join(', ');
  const amountText = (r) => (r.amount === 'unlimited' ? 'Unlimited' : fmtCredits(r.amount, r.unit));
  withLoading(body, () => get('/v1/reports/credits', filterQuery()), (out) => {
    const rows = out.data || [];
    const t = sortableTable([
      { key: 'tenant_name', label: 'Tenant', render: (r) => h('span', {}, h('strong', {}, r.tenant_name),
        h('span', { class: 'sub block' }, buildingNames(r.building_ids))) },
      { key: 'description', label: 'Description', render: (r) => r.description || h('span', { class: 'muted' }, 'No description') },
      { key: 'amount', label: 'Amount', num: true, value: (r) => r.amount, render: amountText },
      { key: 'recurrence', label: 'Recurrence', value: (r) => RECURRENCE_LABEL[r.recurrence] || r.recurrence,
        render: (r) => h('span', {}, RECURRENCE_LABEL[r.recurrence] || r.recurrence,
          h('span', { class: 'sub block' }, [r.pool === 'per_user' ? 'per user' : 'shared pool',
            r.rollover ? `rollover${r.rollover_cap != null ? ` ≤ ${fmtAmount(r.rollover_cap)}` : ''}` : null].filter(Boolean).join(' · '))) },
      { key: 'start', label: 'Schedule', title: 'Start date', render: (r) => h('span', { class: 'nowrap' }, fmtDate(r.start),
        h('span', { class: 'sub block' }, r.end ? `ends ${fmtDate(r.end)}` : 'no end date')) },
      { key: 'expires_at', label: 'Expires', render: (r) => h('span', { class: 'nowrap' }, r.expires_at ? fmtDate(r.expires_at) : 'Never') },
      { key: 'granted', label: 'Granted', num: true, value: (r) => (r.amount === 'unlimited' ? 'unlimited' : r.granted) },
      { key: 'used', label: 'Used', num: true },
      { key: 'remaining', label: 'Left', title: 'Remaining', num: true, value: (r) => (r.amount === 'unlimited' ? 'unlimited' : r.remaining) },
      { key: 'status', label: 'Status', render: (r) => statusBadge(r.status) },
    ], rows, {
      caption: 'Credit allocations', sortKey: 'start', sortDir: 'desc', cls: 'table-credits',
      rowAttrs: (r) => ({ 'data-allocation': r.allocation_id }),
      empty: emptyState('No allocations yet', 'Credits you assign to tenants appear here.'),
    });
    body.append(t.el, h('p', { class: 'table-foot muted' }, `${rows.length} allocation${rows.length === 1 ? '' : 's'}`));
  }, 'Loading allocations…');
}

function usagePanel(panel, bmap, filterQuery) {
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
      const rows = out.data || [];
      body.append(usageTable(rows, bmap, { showTenant: true }).el,
        h('p', { class: 'table-foot muted' }, `${rows.length} booking${rows.length === 1 ? '' : 's'}`));
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

