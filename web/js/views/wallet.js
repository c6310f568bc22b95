// wallet.js - the tenant wallet: what is available per unit, what expires
// soon, and every lot with its validity (GET /v1/users/{id}/wallet).
import { get } from '../api.js';
import {
  h, pageHeader, fmtAmount, fmtCredits, unitName, unitTitle, fmtDate, lastValidDay, localDate, sortableTable,
  statusBadge, emptyState, withLoading, notice,
} from '../ui.js';
import { person, companyZone } from './tenant.js';

export async function render(page, ctx) {
  const tz = await companyZone(ctx);
  const body = h('div', { class: 'wallet', id: 'wallet' });
  const who = await person(ctx, (id) => show(id));
  page.append(pageHeader(ctx.me.role === 'tenant_user' ? 'Your wallet' : 'Wallets',
    ctx.me.role === 'tenant_user' ? 'Credits you can spend on bookings, and when they expire.' : 'Credits each person in your company can spend.',
    h('a', { class: 'btn btn-primary', href: '#/book' }, 'Book a space')));
  if (who.el) page.append(h('div', { class: 'filters' }, who.el));
  page.append(body);
  if (!who.userId) {
    body.append(emptyState('No people yet', 'Your company has no users in Allot.'));
    return;
  }

  async function show(userId) {
    await withLoading(body, async () => {
      const [w, allocations, resources] = await Promise.all([
        get(`/v1/users/${userId}/wallet`), ctx.allocations(), ctx.resources(),
      ]);
      return { w, allocations, resources };
    }, ({ w, allocations, resources }) => {
      const amap = new Map(allocations.map((a) => [a.id, a]));
      const rmap = new Map(resources.map((r) => [r.id, r]));
      const balances = w.balances || [];
      const cards = h('div', { class: 'balances' });
      if (!balances.length) {
        body.append(emptyState('No credits yet', 'When your building assigns credits to you or your company, they appear here.'));
      }
      for (const b of balances) {
        const soon = (w.expiring_soon || []).filter((l) => l.unit === b.unit);
        cards.append(h('div', { class: `balance balance-${b.unit}`, 'data-unit': b.unit },
          h('div', { class: 'balance-label' }, `${unitTitle(b.unit)} available`),
          h('div', { class: 'balance-value', 'data-balance': b.unit }, fmtAmount(b.available)),
          h('div', { class: 'balance-sub' }, b.unlimited
            ? h('span', { class: 'badge badge-info' }, `Plus unlimited ${unitName(b.unit, 2)}`)
            : unitName(b.unit, b.available)),
          soon.length ? h('div', { class: 'balance-foot' },
            `${fmtCredits(sum(soon.map((l) => l.balance)), b.unit)} expire within 30 days`) : null));
      }
      if (balances.length) body.append(cards);

      const expiring = (w.expiring_soon || []).filter((l) => l.balance !== 0);
      body.append(h('section', { class: 'card', 'aria-labelledby': 'expiring-title' },
        h('h2', { class: 'card-title', id: 'expiring-title' }, 'Expiring soon'),
        expiring.length
          ? h('ul', { class: 'expiring', id: 'expiring-soon' }, expiring.map((l) => h('li', {},
            h('span', { class: 'expiring-amount' }, fmtCredits(l.balance, l.unit)),
            h('span', { class: 'expiring-what' }, describe(l, amap)),
            h('span', { class: 'expiring-date' }, `expires ${fmtDate(lastValidDay(l.valid_until, tz))}`))))
          : h('p', { class: 'muted' }, 'Nothing expires in the next 30 days.')));

      const lots = (w.lots || []).slice();
      const table = sortableTable([
        { key: 'allocation', label: 'Credits', value: (l) => describe(l, amap), render: (l) => h('span', {},
          h('strong', {}, describe(l, amap)), l.kind === 'rollover' ? h('span', { class: 'badge badge-info' }, 'Rolled over') : null) },
        { key: 'scope', label: 'Usable for', value: (l) => scopeText(l, amap, rmap) },
        { key: 'unit', label: 'Unit', value: (l) => unitTitle(l.unit) },
        { key: 'granted', label: 'Granted', num: true },
        { key: 'balance', label: 'Balance', num: true },
        { key: 'valid_from', label: 'From', render: (l) => fmtDate(localDate(l.valid_from, tz)) },
        { key: 'valid_until', label: 'Expires', render: (l) => (l.valid_until ? fmtDate(lastValidDay(l.valid_until, tz)) : 'Never') },
        { key: 'status', label: 'Status', render: (l) => statusBadge(l.status) },
      ], lots, {
        caption: 'Credit lots', sortKey: 'valid_until', rowAttrs: (l) => ({ 'data-lot': l.id || '' }),
        empty: emptyState('No credit lots', 'Nothing has been granted to you yet.'),
      });
      body.append(h('section', { class: 'card card-flush', 'aria-labelledby': 'lots-title' },
        h('h2', { class: 'card-title card-pad-title', id: 'lots-title' }, 'All credits'),
        h('p', { class: 'muted card-pad-text' }, 'Bookings are paid from credits valid on the day of the meeting; credits that expire first are used first.'),
        table.el));
      if (balances.some((b) => b.unlimited)) {
        body.append(notice('Unlimited credits are used last, after limited ones, and are never used up.', 'info'));
      }
    }, 'Loading wallet…');
  }
  await show(who.userId);
}

function sum(values) {
  let t = 0;
  for (const v of values) if (typeof v === 'number') t += v;
  return Math.round(t * 1000) / 1000;
}

function describe(lot, amap) {
  const a = amap.get(lot.allocation_id);
  return (a && a.description) || 'Credits';
}

function scopeText(lot, amap, rmap) {
  if (lot.scope === 'all') return 'All resources';
  const a = amap.get(lot.allocation_id);
  const names = new Set();
  for (const line of (a && a.lines) || []) {
    for (const id of line.resource_ids || []) names.add((rmap.get(id) || { name: id }).name);
    for (const t of line.tags || []) names.add(`#${t}`);
  }
  return names.size ? [...names].join(', ') : 'Specific resources';
}
