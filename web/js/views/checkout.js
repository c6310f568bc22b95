// checkout.js - book a space: choose a resource and a time, see the money
// price and the credit price (POST /v1/quotes) with the methods on offer,
// pay with credits, invoice or card (POST /v1/bookings with an
// Idempotency-Key), and see the balance after.
import { post, newIdempotencyKey } from '../api.js';
import {
  h, clear, pageHeader, select, fmtMoney, fmtCredits, fmtRange, unitName, zonedToUtc, isoNoMillis, todayYmd,
  addDays, titleCase, emptyState, errorSlot, clearErrors, showError, debounce, METHOD_LABEL, loading,
  methodBadge,
} from '../ui.js';
import { person } from './tenant.js';
import { creditSummary } from './resources.js';

const draft = { resourceId: '', date: '', time: '10:00', minutes: 60, buildingId: '' };

export async function render(page, ctx) {
  const [buildings, resources] = await Promise.all([ctx.buildings(), ctx.resources()]);
  const bmap = new Map(buildings.map((b) => [b.id, b]));
  if (!draft.date) draft.date = addDays(todayYmd(), 1);
  let who = await person(ctx, (id) => { who.userId = id; requote(); });

  page.append(pageHeader('Book a space', 'Pick a space and a time; pay with credits, by invoice or by card.'));
  if (!resources.length) {
    page.append(emptyState('No spaces to book', 'Your buildings have no bookable resources yet.'));
    return;
  }

  const form = h('form', { class: 'checkout-form', novalidate: true, id: 'checkout-form' });
  const formError = h('div', { class: 'field-error form-error', 'data-error-for': '', role: 'alert', hidden: true });

  // ---------- 1. space ----------
  const bSel = buildings.length > 1
    ? select([{ value: '', label: 'All buildings' }, ...buildings.map((b) => ({ value: b.id, label: b.name }))], { value: draft.buildingId, id: 'co-building' })
    : null;
  const search = h('input', { type: 'search', id: 'co-search', placeholder: 'Search spaces', autocomplete: 'off' });
  const list = h('div', { class: 'resource-list', role: 'radiogroup', 'aria-labelledby': 'co-space-title', id: 'resource-list' });
  const drawList = () => {
    clear(list);
    const q = search.value.trim().toLowerCase();
    const shown = resources.filter((r) => (!bSel || !bSel.value || r.building_id === bSel.value)
      && (!q || r.name.toLowerCase().includes(q) || (r.kind || '').toLowerCase().includes(q) || (r.tags || []).some((t) => t.toLowerCase().includes(q))));
    if (!shown.length) list.append(h('p', { class: 'muted' }, 'No spaces match.'));
    for (const r of shown) {
      const b = bmap.get(r.building_id) || {};
      const id = `co-res-${r.id}`;
      const money = r.pricing && r.pricing.money && !r.credit_only ? `${fmtMoney(r.pricing.money.per_hour, b.currency)} / h` : null;
      const credit = creditSummary(r).split(' · ')[0];
      list.append(h('label', { class: 'resource-card', for: id, 'data-resource': r.id },
        h('input', { type: 'radio', name: 'resource', id, value: r.id, checked: r.id === draft.resourceId, 'data-field': 'resource_id' }),
        h('span', { class: 'resource-main' },
          h('span', { class: 'resource-name' }, r.name),
          h('span', { class: 'resource-meta' }, `${titleCase(r.kind)} · ${b.name || ''}`),
          h('span', { class: 'resource-prices' },
            money ? h('span', { class: 'price-chip' }, money) : null,
            credit ? h('span', { class: 'price-chip price-chip-credit' }, credit) : null,
            r.credit_only ? h('span', { class: 'badge badge-info' }, 'Credits only') : null))));
    }
  };
  search.addEventListener('input', drawList);
  if (bSel) bSel.addEventListener('change', () => { draft.buildingId = bSel.value; drawList(); });
  list.addEventListener('change', (e) => {
    if (e.target.name === 'resource') {
      draft.resourceId = e.target.value;
      syncDurations();
      requote();
    }
  });

  // ---------- 2. time ----------
  const date = h('input', { type: 'date', id: 'co-date', value: draft.date, required: true, 'data-field': 'start' });
  const time = h('select', { id: 'co-time', 'data-field': 'start' });
  for (let m = 6 * 60; m <= 22 * 60; m += 15) {
    const v = `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
    time.append(h('option', { value: v, selected: v === draft.time }, v));
  }
  const duration = h('select', { id: 'co-duration', 'data-field': 'end' });
  const zoneNote = h('p', { class: 'hint', id: 'co-zone' });
  function increment() {
    const r = resources.find((x) => x.id === draft.resourceId);
    const c = r && r.pricing && r.pricing.credits;
    return (c && c.increment_minutes) || (r && r.pricing && r.pricing.increment_minutes) || 15;
  }
  function syncDurations() {
    const inc = increment();
    clear(duration);
    const options = [];
    for (let m = inc; m <= 10 * 60; m += inc) options.push(m);
    if (!options.includes(draft.minutes)) draft.minutes = options.find((m) => m >= 60) || options[0];
    for (const m of options) {
      const hrs = Math.floor(m / 60);
      const mins = m % 60;
      const label = `${hrs ? `${hrs} h` : ''}${hrs && mins ? ' ' : ''}${mins ? `${mins} min` : ''}`;
      duration.append(h('option', { value: m, selected: m === draft.minutes }, label));
    }
    const r = resources.find((x) => x.id === draft.resourceId);
    const b = r ? bmap.get(r.building_id) : null;
    zoneNote.textContent = b ? `Times are local to ${b.name} (${b.timezone}). Bookings go in ${inc}-minute steps.` : 'Choose a space first.';
  }
  for (const el of [date, time, duration]) {
    el.addEventListener('change', () => {
      draft.date = date.value;
      draft.time = time.value;
      draft.minutes = Number(duration.value);
      requote();
    });
  }

  form.append(formError,
    h('section', { class: 'step', 'aria-labelledby': 'co-space-title' },
      h('div', { class: 'step-num', 'aria-hidden': 'true' }, '1'),
      h('div', { class: 'step-body' },
        h('h2', { class: 'step-title', id: 'co-space-title' }, 'Choose a space'),
        h('p', { class: 'step-hint' }, 'Prices per hour in money and in credits.'),
        h('div', { class: 'filters filters-inline' },
          bSel ? h('div', { class: 'filter' }, h('label', { for: 'co-building', class: 'filter-label' }, 'Building'), bSel) : null,
          h('div', { class: 'filter filter-grow' }, h('label', { for: 'co-search', class: 'filter-label' }, 'Search'), search)),
        list, errorSlot('resource_id'))),
    h('section', { class: 'step', 'aria-labelledby': 'co-time-title' },
      h('div', { class: 'step-num', 'aria-hidden': 'true' }, '2'),
      h('div', { class: 'step-body' },
        h('h2', { class: 'step-title', id: 'co-time-title' }, 'Choose a time'),
        h('p', { class: 'step-hint' }, 'Credits are taken from those valid on the day of the booking.'),
        who.el ? h('div', { class: 'field' }, who.el) : null,
        h('div', { class: 'grid-3' },
          h('div', { class: 'field' }, h('label', { for: 'co-date' }, 'Date'), date),
          h('div', { class: 'field' }, h('label', { for: 'co-time' }, 'Start time'), time),
          h('div', { class: 'field' }, h('label', { for: 'co-duration' }, 'Duration'), duration)),
        zoneNote, errorSlot('start'), errorSlot('end'))));

  // ---------- 3. price and pay ----------
  const panel = h('aside', { class: 'checkout-panel card', 'aria-labelledby': 'co-panel-title', id: 'checkout-panel' });
  page.append(h('div', { class: 'checkout' }, form, panel));

  let quoteSeq = 0;
  let lastBody = '';
  let idemKey = newIdempotencyKey();

  function request() {
    const r = resources.find((x) => x.id === draft.resourceId);
    if (!r || !draft.date || !who.userId) return null;
    const b = bmap.get(r.building_id);
    const start = zonedToUtc(draft.date, draft.time, b ? b.timezone : 'UTC');
    const end = new Date(start.getTime() + draft.minutes * 60000);
    return { r, b, body: { resource_id: r.id, user_id: who.userId, start: isoNoMillis(start), end: isoNoMillis(end) } };
  }

  function panelHead(sub) {
    return [h('h2', { class: 'card-title', id: 'co-panel-title' }, 'Your booking'), sub ? h('p', { class: 'muted' }, sub) : null].filter(Boolean);
  }

  const requote = debounce(quote, 200);

  async function quote() {
    clearErrors(form);
    const req = request();
    if (!req) {
      clear(panel).append(...panelHead('Choose a space and a time to see the price.'));
      return;
    }
    const seq = ++quoteSeq;
    clear(panel).append(...panelHead(), loading('Getting the price…'));
    let q;
    try {
      q = await post('/v1/quotes', req.body);
    } catch (err) {
      if (seq !== quoteSeq) return;
      clear(panel).append(...panelHead(), summaryBlock(req));
      if (err.field) showError(form, err);
      panel.append(h('div', { class: 'alert alert-error', role: 'alert', id: 'quote-error' }, err.message));
      return;
    }
    if (seq !== quoteSeq) return;
    showQuote(req, q);
  }

  function summaryBlock(req) {
    return h('div', { class: 'booking-summary' },
      h('div', { class: 'booking-summary-name' }, req.r.name),
      h('div', { class: 'muted' }, `${req.b ? req.b.name : ''}`),
      h('div', {}, fmtRange(req.body.start, req.body.end, req.b ? req.b.timezone : 'UTC')));
  }

  function showQuote(req, q) {
    clear(panel).append(...panelHead(), summaryBlock(req));
    const methods = q.payment_methods || [];
    const cur = req.b ? req.b.currency : null;
    const prices = h('dl', { class: 'prices', id: 'quote-prices' });
    if (q.money) {
      const discounted = q.money.before_discount != null && q.money.before_discount !== q.money.amount;
      prices.append(h('div', { class: 'price-row' }, h('dt', {}, 'Price'), h('dd', { 'data-price': 'money' },
        discounted ? h('s', { class: 'muted' }, fmtMoney(q.money.before_discount, q.money.currency || cur)) : null, ' ',
        fmtMoney(q.money.amount, q.money.currency || cur))));
    } else {
      prices.append(h('div', { class: 'price-row' }, h('dt', {}, 'Price'), h('dd', { class: 'muted' }, 'Credits only')));
    }
    if (q.credits) {
      prices.append(
        h('div', { class: 'price-row' }, h('dt', {}, 'Credit price'), h('dd', { 'data-price': 'credits' }, fmtCredits(q.credits.amount, q.credits.unit))),
        h('div', { class: 'price-row' }, h('dt', {}, 'Your balance'), h('dd', { 'data-balance': 'available' }, fmtCredits(q.credits.available, q.credits.unit))));
      if (methods.includes('credits')) {
        prices.append(h('div', { class: 'price-row' }, h('dt', {}, 'After paying with credits'), h('dd', { 'data-balance': 'after' }, fmtCredits(q.credits.balance_after, q.credits.unit))));
      }
    }
    panel.append(prices);
    if (q.credits && !methods.includes('credits')) {
      panel.append(h('div', { class: 'alert alert-info' },
        `Credits can't pay for this booking: it costs ${fmtCredits(q.credits.amount, q.credits.unit)} and you have ${fmtCredits(q.credits.available, q.credits.unit)}. Credits pay the whole price or nothing.`));
    } else if (!q.credits) {
      const c = req.r.pricing && req.r.pricing.credits;
      panel.append(h('p', { class: 'muted small' }, c
        ? `You have no ${unitName(c.unit || 'hour', 2)} that can pay for this space.`
        : 'This space does not take credits.'));
    }
    if (!methods.length) {
      panel.append(h('div', { class: 'alert alert-error', role: 'alert' },
        req.r.credit_only ? 'This space can only be paid with credits, and you have none that can pay for it.' : 'No payment method is available for this booking.'));
      return;
    }
    const group = h('div', { class: 'radios', role: 'radiogroup', 'aria-labelledby': 'co-pay-label', id: 'payment-methods' });
    for (const m of methods) {
      const id = `co-pay-${m}`;
      const detail = m === 'credits' ? fmtCredits(q.credits.amount, q.credits.unit) : q.money ? fmtMoney(q.money.amount, q.money.currency || cur) : '';
      group.append(h('label', { class: 'radio-card', for: id },
        h('input', { type: 'radio', name: 'payment_method', id, value: m, checked: m === methods[0], 'data-field': 'payment_method' }),
        h('span', {}, h('strong', {}, METHOD_LABEL[m] || titleCase(m)), h('span', { class: 'sub' }, detail))));
    }
    const pay = h('button', { type: 'button', class: 'btn btn-primary btn-block btn-large', id: 'confirm-booking' });
    const setLabel = () => {
      const m = group.querySelector('input:checked').value;
      pay.textContent = m === 'credits' ? `Pay ${fmtCredits(q.credits.amount, q.credits.unit)}` : m === 'invoice' ? 'Book and invoice' : `Pay ${q.money ? fmtMoney(q.money.amount, q.money.currency || cur) : ''} by card`;
    };
    group.addEventListener('change', setLabel);
    setLabel();
    const payError = h('div', { id: 'pay-error' });
    panel.append(h('span', { class: 'label', id: 'co-pay-label' }, 'Pay with'), group, payError, pay,
      h('p', { class: 'muted small' }, 'No partial payments: credits pay the whole price or are not used.'));
    pay.addEventListener('click', async () => {
      const method = group.querySelector('input:checked').value;
      const body = { ...req.body, payment_method: method };
      const text = JSON.stringify(body);
      if (text !== lastBody) {
        lastBody = text;
        idemKey = newIdempotencyKey();
      }
      pay.disabled = true;
      pay.textContent = 'Booking…';
      clear(payError);
      try {
        const out = await post('/v1/bookings', body, idemKey);
        lastBody = '';
        confirmed(req, out);
      } catch (err) {
        if (err.field) showError(form, err);
        payError.append(h('div', { class: 'alert alert-error', role: 'alert' },
          err.code === 'slot_taken' ? `${err.message} Choose another time.` : err.message));
        pay.disabled = false;
        setLabel();
      }
    });
  }

  function confirmed(req, out) {
    const cur = req.b ? req.b.currency : null;
    const rows = [
      ['Space', req.r.name],
      ['When', fmtRange(out.start || req.body.start, out.end || req.body.end, req.b ? req.b.timezone : 'UTC')],
      ['Paid with', methodBadge(out.payment_method)],
    ];
    if (out.payment_method === 'credits' && out.credits) {
      rows.push(['Credits paid', fmtCredits(out.credits.amount, out.credits.unit)]);
      if (out.credits.balance_after !== undefined) rows.push(['Balance after', h('span', { 'data-balance': 'after-booking' }, fmtCredits(out.credits.balance_after, out.credits.unit))]);
    } else if (out.money) {
      rows.push(['Amount', fmtMoney(out.money.amount, out.money.currency || cur)]);
    }
    clear(panel).append(
      h('div', { class: 'confirmation', id: 'booking-confirmation', role: 'status', tabindex: '-1', 'data-booking': out.id },
        h('div', { class: 'confirm-icon', 'aria-hidden': 'true' }, '✓'),
        h('h2', { class: 'card-title', id: 'co-panel-title' }, 'Booking confirmed'),
        h('dl', { class: 'prices' }, rows.map(([k, v]) => h('div', { class: 'price-row' }, h('dt', {}, k), h('dd', {}, v)))),
        h('p', { class: 'muted small' }, `Reference ${out.id}`),
        h('div', { class: 'button-row' },
          h('a', { class: 'btn btn-secondary', href: `#/bookings?highlight=${encodeURIComponent(out.id)}` }, 'View bookings'),
          h('a', { class: 'btn btn-ghost', href: '#/wallet' }, 'Wallet'),
          h('button', { type: 'button', class: 'btn btn-ghost', onclick: () => quote() }, 'Book again'))));
    ctx.forget('wallet');
    panel.querySelector('#booking-confirmation').focus();
  }

  drawList();
  syncDurations();
  quote();
}

