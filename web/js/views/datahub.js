// datahub.js - Data Hub: coins and hourly credits, each with its summary
// tiles, a chart of granted vs used per month, and the by-customer table over
// a month range (expandable per month), exported as CSV.
import { get, downloadCsv } from '../api.js';
import {
  h, clear, tile, fmtAmount, fmtMonth, monthAdd, sortableTable, pageHeader, select, emptyState, toast, busy,
  errorBox, loading,
} from '../ui.js';

const state = { from: '', to: '', building_id: '', tenant_id: '' };
const charts = new Set();

// [key, short label under its group, full name]
const FIGURES = [
  ['once_opening', 'Opening', '“Once” opening balance'],
  ['once_granted', 'Granted', '“Once” granted'],
  ['once_used', 'Used', '“Once” used'],
  ['once_expired', 'Expired', '“Once” expired'],
  ['once_closing', 'Closing', '“Once” closing balance'],
  ['monthly_granted', 'Granted', '“Monthly” granted'],
  ['monthly_used', 'Used', '“Monthly” used'],
  ['monthly_unused', 'Unused', '“Monthly” unused'],
  ['monthly_rolled_over', 'Rolled over', '“Monthly” rolled over'],
  ['total_granted', 'Granted', 'Total granted'],
  ['total_used', 'Used', 'Total used'],
];
const GROUPS = [{ label: '', span: 1 }, { label: '“Once”', span: 5 }, { label: '“Monthly”', span: 4 }, { label: 'Total', span: 2 }];

export async function render(page, ctx) {
  for (const c of charts) c.destroy();
  charts.clear();
  const [buildings, tenants] = await Promise.all([ctx.buildings(), ctx.tenants()]);
  if (!state.to) {
    // The server's own current month (its clock may be a test clock).
    const probe = await get('/v1/reports/datahub', { unit: 'hour' });
    state.to = probe.to;
    state.from = monthAdd(probe.to, -2);
  }
  page.append(pageHeader('Data Hub', 'Coins and hourly credits granted to and used by each customer, month by month.'));

  const from = h('input', { type: 'month', id: 'hub-from', value: state.from, 'data-field': 'from', pattern: '\\d{4}-\\d{2}', placeholder: 'YYYY-MM' });
  const to = h('input', { type: 'month', id: 'hub-to', value: state.to, 'data-field': 'to', pattern: '\\d{4}-\\d{2}', placeholder: 'YYYY-MM' });
  const bSel = select([{ value: '', label: 'All buildings' }, ...buildings.map((b) => ({ value: b.id, label: b.name }))],
    { value: state.building_id, id: 'hub-building' });
  const tSel = select([{ value: '', label: 'All customers' }, ...tenants.map((t) => ({ value: t.id, label: t.name }))],
    { value: state.tenant_id, id: 'hub-tenant' });
  const rangeError = h('div', { class: 'field-error', role: 'alert', hidden: true, id: 'hub-range-error' });
  const onChange = () => {
    state.from = from.value;
    state.to = to.value;
    state.building_id = bSel.value;
    state.tenant_id = tSel.value;
    load();
  };
  for (const el of [from, to, bSel, tSel]) el.addEventListener('change', onChange);
  page.append(h('div', { class: 'filters' },
    h('div', { class: 'filter' }, h('label', { for: 'hub-from', class: 'filter-label' }, 'From month'), from),
    h('div', { class: 'filter' }, h('label', { for: 'hub-to', class: 'filter-label' }, 'To month'), to),
    h('div', { class: 'filter' }, h('label', { for: 'hub-building', class: 'filter-label' }, 'Building'), bSel),
    h('div', { class: 'filter' }, h('label', { for: 'hub-tenant', class: 'filter-label' }, 'Customer'), tSel),
    rangeError));

  const hourBox = h('section', { class: 'card hub-section', id: 'hub-hour', 'aria-labelledby': 'hub-hour-title' });
  const coinBox = h('section', { class: 'card hub-section', id: 'hub-coin', 'aria-labelledby': 'hub-coin-title' });
  page.append(hourBox, coinBox);

  function query(unit) {
    return { unit, from: state.from, to: state.to, building_id: state.building_id, tenant_id: state.tenant_id };
  }

  async function load() {
    rangeError.hidden = true;
    from.removeAttribute('aria-invalid');
    to.removeAttribute('aria-invalid');
    for (const c of charts) c.destroy();
    charts.clear();
    await Promise.all([section(hourBox, 'hour'), section(coinBox, 'coin')]);
  }

  async function section(box, unit) {
    const title = unit === 'hour' ? 'Hourly credits' : 'Coins';
    const exportBtn = h('button', { type: 'button', class: 'btn btn-secondary', 'data-export': `datahub-${unit}.csv` },
      h('span', { 'aria-hidden': 'true' }, '⇩ '), 'Export CSV');
    exportBtn.addEventListener('click', () => busy(exportBtn, async () => {
      try {
        await downloadCsv('/v1/reports/datahub', query(unit), `datahub-${unit}-${state.from}-to-${state.to}.csv`);
        toast('Exported the Data Hub CSV');
      } catch (err) {
        toast(`Export failed: ${err.message}`, 'error');
      }
    }, 'Exporting…'));
    const head = h('div', { class: 'section-head' },
      h('div', {}, h('h2', { class: 'card-title', id: `hub-${unit}-title` }, title),
        h('p', { class: 'muted' }, unit === 'hour'
          ? 'Hourly credits may be granted in unlimited amounts; a month with any unlimited grant shows “Unlimited”.'
          : 'Coins are money-like credits and are never unlimited.')),
      exportBtn);
    const body = h('div', {});
    clear(box).append(head, body);
    body.append(loading(`Loading ${title.toLowerCase()}…`));
    let d;
    try {
      d = await get('/v1/reports/datahub', query(unit));
    } catch (err) {
      clear(body);
      if (err.field === 'from' || err.field === 'to') {
        rangeError.textContent = err.message;
        rangeError.hidden = false;
        (err.field === 'from' ? from : to).setAttribute('aria-invalid', 'true');
      }
      body.append(errorBox(err, () => section(box, unit)));
      return;
    }
    clear(body);
    const t = d.tiles || {};
    const tiles = h('div', { class: `tiles tiles-compact ${unit === 'hour' ? 'tiles-7' : 'tiles-6'}` },
      tile('“Once” granted', fmtAmount(t.once_granted)),
      tile('“Once” used', fmtAmount(t.once_used)),
      tile('“Monthly” granted', fmtAmount(t.monthly_granted)),
      tile('“Monthly” used', fmtAmount(t.monthly_used)),
      tile('Total granted', fmtAmount(t.total_granted)),
      tile('Total used', fmtAmount(t.total_used)),
      unit === 'hour' ? tile('Unlimited grants', fmtAmount(t.unlimited_customers ?? 0),
        'customers', { accent: true, key: 'unlimited_customers' }) : null);
    body.append(tiles);
    const customers = d.customers || [];
    body.append(chartBlock(unit, d, customers));
    const cols = [
      { key: 'name', label: 'Customer', render: (r) => (r.month ? h('span', { class: 'month-label' }, fmtMonth(r.month)) : h('strong', {}, r.name)) },
      ...FIGURES.map(([key, label, full]) => ({ key, label, title: full, num: true })),
    ];
    const table = sortableTable(cols, customers, {
      caption: `${title} by customer`, sortKey: 'name', cls: 'table-hub', groups: GROUPS,
      details: (r) => r.months || [],
      rowLabel: (r) => r.name,
      rowAttrs: (r) => ({ 'data-customer': r.tenant_id }),
      empty: emptyState(`No ${title.toLowerCase()} in this range`, 'No grants or use in these months.'),
    });
    body.append(h('h3', { class: 'subhead' }, `${title} by customer`),
      h('p', { class: 'muted small' }, `${fmtMonth(d.from)} – ${fmtMonth(d.to)}. “Once” opening is at the start of the first month, closing at the end of the last. Used counts in the month of the meeting; expired, unused and rolled over in the month a period ends. Credit carried by rollover is not granted again. Expand a row for each month.`),
      table.el);
  }

  await load();
}

function chartBlock(unit, d, customers) {
  const months = [];
  for (let m = d.from; m <= d.to; m = monthAdd(m, 1)) months.push(m);
  const granted = months.map(() => 0);
  const used = months.map(() => 0);
  const unlimited = months.map(() => false);
  for (const c of customers) {
    for (const row of c.months || []) {
      const i = months.indexOf(row.month);
      if (i < 0) continue;
      if (row.total_granted === 'unlimited') unlimited[i] = true;
      else granted[i] += Number(row.total_granted) || 0;
      used[i] += Number(row.total_used) || 0;
    }
  }
  const labels = months.map((m, i) => (unlimited[i] ? `${fmtMonth(m)} *` : fmtMonth(m)));
  const summary = months.map((m, i) => `${fmtMonth(m)}: granted ${unlimited[i] ? 'unlimited' : fmtAmount(round3(granted[i]))}, used ${fmtAmount(round3(used[i]))}`).join('; ');
  const canvas = h('canvas', { role: 'img', 'aria-label': `Granted and used per month. ${summary}` });
  const box = h('figure', { class: 'chart' },
    h('div', { class: 'chart-canvas' }, canvas),
    h('figcaption', { class: 'muted small' }, `Granted vs used per month${unlimited.some(Boolean) ? ' · * the month includes unlimited grants (the bar shows the limited part)' : ''}`));
  if (typeof window.Chart !== 'function') {
    box.replaceChildren(h('div', { class: 'alert alert-info' }, `Chart unavailable (run scripts/web.sh to install it). ${summary}.`));
    return box;
  }
  requestAnimationFrame(() => {
    const accent = unit === 'hour' ? '#4f46e5' : '#0d9488';
    const soft = unit === 'hour' ? '#c7d2fe' : '#99f6e4';
    const chart = new window.Chart(canvas, {
      type: 'bar',
      data: {
        labels,
        datasets: [
          { label: 'Granted', data: granted.map(round3), backgroundColor: soft, borderRadius: 4, maxBarThickness: 44 },
          { label: 'Used', data: used.map(round3), backgroundColor: accent, borderRadius: 4, maxBarThickness: 44 },
        ],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: { duration: 250 },
        plugins: {
          legend: { position: 'bottom', labels: { boxWidth: 12, boxHeight: 12 } },
          tooltip: {
            callbacks: {
              label: (c) => (c.datasetIndex === 0 && unlimited[c.dataIndex]
                ? `Granted: ${fmtAmount(c.raw)} + unlimited` : `${c.dataset.label}: ${fmtAmount(c.raw)}`),
            },
          },
        },
        scales: {
          y: { beginAtZero: true, grid: { color: '#eef0f4' }, ticks: { precision: 0 } },
          x: { grid: { display: false } },
        },
      },
    });
    charts.add(chart);
  });
  return box;
}

function round3(x) {
  return Math.round(x * 1000) / 1000;
}
