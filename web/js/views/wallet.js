// wallet.js - the tenant wallet: what is available per unit, what expires
// soon, and every lot with its validity (GET /v1/users/{id}/wallet).
import { get, getAll } from '../api.js';
import {
  h, pageHeader, fmtAmount, fmtCredits, unitName, unitTitle, fmtDate, lastValidDay, localDate, sortableTable,
  statusBadge, emptyState, withLoading, notice, fmtRange, methodBadge,
} from '../ui.js';
import { person, companyZone } from './tenant.js';
import { price } from './bookings.js';

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
      const [w, allocations, resources, buildings, spent] = await Promise.all([
        get(`/v1/users/${userId}/wallet`), ctx.allocations(), ctx.resources(), ctx.buildings(),
        getAll('/v1/bookings', { user_id: userId }),
      ]);
      return { w, allocations, resources, buildings, spent };
    }, ({ w, allocations, resources, buildings, spent }) => {
      const amap = new Map(allocations.map((a) => [a.id, a]));
      const rmap = new Map(resources.map((r) => [r.id, r]));
      const bmap = new Map(buildings.map((b) => [b.id, b]));
      const now = ctx.serverNow().toISOString();
      // "Expiring soon" follows each lot's own end: every limited credit
      // valid now that has an end date, soonest first, whatever the period
      // length (a weekly lot ends within days, a yearly one in months).
      const ending = (w.lots || []).filter((l) => l.status === 'active' && l.valid_until && typeof l.balance === 'number'
        && l.balance > 0 && l.valid_from <= now)
        .sort((a, b) => (a.valid_until < b.valid_until ? -1 : a.valid_until > b.valid_until ? 1 : 0));
      const balances = w.balances || [];
      const cards = h('div', { class: 'balances' });
      if (!balances.length) {
        body.append(emptyState('No credits yet', 'When your building assigns credits to you or your company, they appear here.'));
      }
      for (const b of balances) {
        const mine = ending.filter((l) => l.unit === b.unit);
        const first = mine.length ? mine[0].valid_until : null;
        const soon = mine.filter((l) => l.valid_until === first);
        const where = usableWhere(b.unit, w.lots || [], amap, rmap, bmap);
        cards.append(h('div', { class: `balance balance-${b.unit}`, 'data-unit': b.unit },
          h('div', { class: 'balance-label' }, `${unitTitle(b.unit)} available`),
          h('div', { class: 'balance-value', 'data-balance': b.unit }, fmtAmount(b.available)),
          h('div', { class: 'balance-sub' }, b.unlimited
            ? h('span', { class: 'badge badge-info' }, `Plus unlimited ${unitName(b.unit, 2)}`)
            : unitName(b.unit, b.available)),
          h('div', { class: 'balance-where', 'data-where': b.unit }, where),
          soon.length ? h('div', { class: 'balance-foot' },
            `${fmtCredits(sum(soon.map((l) => l.balance)), b.unit)} ${rollsOver(soon[0], amap) ? 'end their period' : 'expire'} after ${fmtDate(lastValidDay(first, tz))}`) : null));
      }
      if (balances.length) body.append(cards);

      const daysLeft = (l) => Math.max(0, Math.ceil((Date.parse(l.valid_until) - Date.parse(now)) / 86400000));
      body.append(h('section', { class: 'card', 'aria-labelledby': 'expiring-title' },
        h('h2', { class: 'card-title', id: 'expiring-title' }, 'Expiring soon'),
        h('p', { class: 'muted small' }, 'Credits with an end date, soonest first: each expires at the end of its own period.'),
        ending.length
          ? h('ul', { class: 'expiring', id: 'expiring-soon' }, ending.map((l) => h('li', { 'data-lot': l.id, 'data-until': l.valid_until },
            h('span', { class: 'expiring-amount' }, fmtCredits(l.balance, l.unit)),
            h('span', { class: 'expiring-what' }, describe(l, amap), rollsOver(l, amap) ? h('span', { class: 'sub' }, ` · unused credits roll over${rollsOver(l, amap) !== true ? ` up to ${fmtAmount(rollsOver(l, amap))}` : ''}`) : null),
            h('span', { class: 'expiring-date' }, `${rollsOver(l, amap) ? 'period ends' : 'expires'} ${fmtDate(lastValidDay(l.valid_until, tz))} · ${daysLeft(l) === 0 ? 'today' : `in ${daysLeft(l)} day${daysLeft(l) === 1 ? '' : 's'}`}`))))
          : h('p', { class: 'muted' }, 'None of your credits has an end date.')));

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
      body.append(historyCard(spent, rmap, bmap, userId));
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

/** True (or the cap) when the lot's allocation carries unused credits into
 *  the next period, false when they expire. */
function rollsOver(lot, amap) {
  const a = amap.get(lot.allocation_id);
  const r = a && a.schedule && a.schedule.rollover;
  if (!r || !r.enabled) return false;
  return r.cap != null ? r.cap : true;
}

/** Where a unit's credits can be spent: the spaces priced in that unit
 *  that some lot of the wallet covers (all resources, or the lines' own). */
function usableWhere(unit, lots, amap, rmap, bmap) {
  const mine = lots.filter((l) => l.unit === unit && (l.status === 'active' || l.status === 'upcoming'));
  if (!mine.length) return '';
  const priced = [...rmap.values()].filter((r) => r.pricing && r.pricing.credits && (r.pricing.credits.unit || 'hour') === unit);
  const covered = new Set();
  for (const l of mine) {
    const a = amap.get(l.allocation_id);
    const buildingsOk = (r) => !a || a.cross_building || (a.building_ids || []).includes(r.building_id);
    if (l.scope === 'all') {
      for (const r of priced) if (buildingsOk(r)) covered.add(r.id);
      continue;
    }
    for (const line of (a && a.lines) || []) {
      for (const id of line.resource_ids || []) covered.add(id);
      for (const r of priced) if ((line.tags || []).some((t) => (r.tags || []).includes(t))) covered.add(r.id);
    }
  }
  const names = [...covered].map((id) => rmap.get(id)).filter((r) => r && priced.includes(r))
    .map((r) => `${r.name}${bmap.size > 1 ? ` (${(bmap.get(r.building_id) || {}).name || ''})` : ''}`);
  if (!names.length) return `No space is priced in ${unitName(unit, 2)} yet.`;
  if (names.length === priced.length && names.length > 3) return `Usable for every space priced in ${unitName(unit, 2)} (${names.length}).`;
  return `Usable for: ${names.join(', ')}.`;
}

/** What the person spent: their bookings, newest first, with the price,
 *  how it was paid and any refund (the ledger itself is operators' only). */
function historyCard(bookings, rmap, bmap, userId) {
  const rows = bookings.filter((b) => b.user_id === userId);
  const tz = (b) => (bmap.get(b.building_id) || {}).timezone || 'UTC';
  const name = (b) => (rmap.get(b.resource_id) || { name: b.resource_id }).name;
  const refund = (b) => {
    if (b.status !== 'cancelled' || !b.refund) return '';
    if (b.payment_method === 'credits' && b.credits) return `${fmtCredits(b.refund.credits, b.credits.unit)} back`;
    return '';
  };
  const t = sortableTable([
    { key: 'start', label: 'When', render: (b) => h('span', { class: 'nowrap' }, fmtRange(b.start, b.end, tz(b))) },
    { key: 'resource', label: 'Space', value: name },
    { key: 'payment_method', label: 'Paid with', render: (b) => methodBadge(b.payment_method) },
    { key: 'price', label: 'Spent', num: true, value: (b) => price(b), render: (b) => h('span', {}, price(b),
      refund(b) ? h('span', { class: 'sub block' }, refund(b)) : null) },
    { key: 'status', label: 'Status', render: (b) => statusBadge(b.status) },
  ], rows, {
    caption: 'Spending history', sortKey: 'start', sortDir: 'desc', pageSize: 10,
    rowAttrs: (b) => ({ 'data-spent': b.id }),
    empty: emptyState('Nothing spent yet', 'Bookings paid from this wallet appear here.'),
  });
  return h('section', { class: 'card card-flush', 'aria-labelledby': 'history-title', id: 'spending-history' },
    h('h2', { class: 'card-title card-pad-title', id: 'history-title' }, 'Spending history'),
    h('p', { class: 'muted card-pad-text' }, 'Your bookings and what each cost; a cancelled booking shows what came back.'),
    t.el);
}
