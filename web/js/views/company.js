// company.js - the company admin's usage report: who in the company booked
// what, with which credits, filtered by dates and exported as CSV. The API
// scopes it to the admin's own company.
import { get, downloadCsv } from '../api.js';
import { h, clear, pageHeader, tile, fmtAmount, unitName, withLoading, toast, busy, addDays } from '../ui.js';
import { usageTable } from './dashboard.js';

const state = { from: '', to: '' };

export async function render(page, ctx) {
  const buildings = await ctx.buildings();
  const bmap = new Map(buildings.map((b) => [b.id, b]));
  const from = h('input', { type: 'date', id: 'co-usage-from', value: state.from });
  const to = h('input', { type: 'date', id: 'co-usage-to', value: state.to });
  const query = () => {
    const q = {};
    if (state.from) q.from = `${state.from}T00:00:00Z`;
    if (state.to) q.to = `${addDays(state.to, 1)}T00:00:00Z`;
    return q;
  };
  const exportBtn = h('button', { type: 'button', class: 'btn btn-secondary', 'data-export': 'company-usage.csv' }, h('span', { 'aria-hidden': 'true' }, '⇩ '), 'Export CSV');
  exportBtn.addEventListener('click', () => busy(exportBtn, async () => {
    try {
      await downloadCsv('/v1/reports/usage', query(), 'company-usage.csv');
      toast('Exported company-usage.csv');
    } catch (err) {
      toast(`Export failed: ${err.message}`, 'error');
    }
  }, 'Exporting…'));
  page.append(pageHeader('Company usage', `How ${ctx.me.company || 'your company'} uses its credits.`, exportBtn));
  page.append(h('div', { class: 'filters' },
    h('div', { class: 'filter' }, h('label', { for: 'co-usage-from', class: 'filter-label' }, 'From'), from),
    h('div', { class: 'filter' }, h('label', { for: 'co-usage-to', class: 'filter-label' }, 'To'), to)));
  const tiles = h('div', { class: 'tiles' });
  const body = h('div', { class: 'card card-flush' });
  page.append(tiles, body);
  for (const el of [from, to]) {
    el.addEventListener('change', () => { state.from = from.value; state.to = to.value; load(); });
  }
  async function load() {
    clear(tiles);
    await withLoading(body, () => get('/v1/reports/usage', query()), (out) => {
      const rows = out.data || [];
      const live = rows.filter((r) => r.status !== 'cancelled');
      const used = {};
      for (const r of rows) {
        if (r.credits == null || !r.unit) continue;
        used[r.unit] = (used[r.unit] || 0) + r.credits; // already net of refunds
      }
      const people = new Set(live.filter((r) => r.payment_method === 'credits').map((r) => r.user_id));
      tiles.append(
        tile('Hours used', fmtAmount(Math.round((used.hour || 0) * 1000) / 1000), `${unitName('hour', 2)}, net of refunds`),
        tile('Coins used', fmtAmount(Math.round((used.coin || 0) * 1000) / 1000), `${unitName('coin', 2)}, net of refunds`),
        tile('Bookings', fmtAmount(live.length), 'not cancelled'),
        tile('People', fmtAmount(people.size), 'who paid with credits'));
      body.append(usageTable(rows, bmap, { showTenant: false }).el);
    }, 'Loading usage…');
  }
  await load();
}
