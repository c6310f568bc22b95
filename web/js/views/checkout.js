// checkout.js - book a space: choose a resource and a time, see the money
// price and the credit price (POST /v1/quotes) with the methods on offer,
// pay with credits, invoice or card (POST /v1/bookings with an
// Idempotency-Key), and see the balance after.
import { get, getAll, post, newIdempotencyKey } from '../api.js';
import {
  h, clear, pageHeader, select, fmtMoney, fmtCredits, fmtRange, fmtTime, unitName, zonedToUtc, isoNoMillis,
  addDays, titleCase, emptyState, errorSlot, clearErrors, showError, debounce, METHOD_LABEL, loading,
  methodBadge, localDate, fmtDate,
} from '../ui.js';
import { person } from './tenant.js';
import { creditPrice, kindLabel } from './resources.js';

const DAY_FROM_MIN = 6 * 60;   // the day view and the start times cover 06:00-22:00
const DAY_TO_MIN = 22 * 60;

const draft = { resourceId: '', date: '', time: '10:00', minutes: 60, buildingId: '' };

export async function render(page, ctx) {
  const [buildings, resources] = await Promise.all([ctx.buildings(), ctx.resources()]);
  const bmap = new Map(buildings.map((b) => [b.id, b]));
  // Tomorrow by the server's clock (a test clock may differ from this machine's).
  if (!draft.date) draft.date = addDays(localDate(ctx.serverNow().toISOString(), buildings[0] ? buildings[0].timezone : 'UTC'), 1);
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
      const money = r.pricing && r.pricing.money && !r.credit_only ? `${fmtMoney(r.pricing.money.per_hour, b.currency)} per hour` : null;
      const credit = creditPrice(r);
      list.append(h('label', { class: 'resource-card', for: id, 'data-resource': r.id },
        h('input', { type: 'radio', name: 'resource', id, value: r.id, checked: r.id === draft.resourceId, 'data-field': 'resource_id' }),
        h('span', { class: 'resource-main' },
          h('span', { class: 'resource-name' }, r.name),
          h('span', { class: 'resource-meta' }, [kindLabel(r), b.name].filter(Boolean).join(' · ')),
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
  for (let m = DAY_FROM_MIN; m <= DAY_TO_MIN; m += 15) {
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
        zoneNote, errorSlot('start'), errorSlot('end'),
        h('div', { class: 'availability', id: 'availability', 'aria-live': 'polite' }))));

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
  const availability = form.querySelector('#availability');
  const busyCache = new Map();

  /** The bookings of this space on this day that the signed-in principal
   *  may see (GET /v1/bookings is scoped: a member sees their own, a
   *  company admin the company's). Other companies' bookings are not
   *  visible to a tenant, so the view says so. */
  async function busyOf(req) {
    const tz = req.b ? req.b.timezone : 'UTC';
    const key = `${req.r.id}:${draft.date}`;
    if (!busyCache.has(key)) {
      const from = isoNoMillis(zonedToUtc(draft.date, '00:00', tz));
      const to = isoNoMillis(zonedToUtc(addDays(draft.date, 1), '00:00', tz));
      busyCache.set(key, getAll('/v1/bookings', { resource_id: req.r.id, from, to, status: 'confirmed' })
        .then((rows) => rows.filter((b) => b.status === 'confirmed' && b.resource_id === req.r.id
          && b.end > from && b.start < to))
        .catch((e) => { busyCache.delete(key); throw e; }));
    }
    return busyCache.get(key);
  }

  function drawAvailability(req, busy) {
    const tz = req.b ? req.b.timezone : 'UTC';
    const minutesOf = (iso) => {
      const [hh, mm] = fmtTime(iso, tz).split(':').map(Number);
      return localDate(iso, tz) < draft.date ? 0 : localDate(iso, tz) > draft.date ? 24 * 60 : hh * 60 + mm;
    };
    const span = DAY_TO_MIN - DAY_FROM_MIN;
    const pct = (m) => `${(Math.min(Math.max(m, DAY_FROM_MIN), DAY_TO_MIN) - DAY_FROM_MIN) / span * 100}%`;
    const bar = h('div', { class: 'day-bar', role: 'img', id: 'day-bar',
      'aria-label': busy.length ? `Busy: ${busy.map((b) => `${fmtTime(b.start, tz)}–${fmtTime(b.end, tz)}`).join(', ')}` : 'No bookings you can see on this day' });
    for (let m = DAY_FROM_MIN; m <= DAY_TO_MIN; m += 120) {
      const edge = m === DAY_FROM_MIN ? ' day-tick-start' : m === DAY_TO_MIN ? ' day-tick-end' : '';
      bar.append(h('span', { class: `day-tick${edge}`, style: { left: pct(m) } }, `${String(m / 60).padStart(2, '0')}:00`));
    }
    for (const b of busy) {
      const a = minutesOf(b.start);
      const z = minutesOf(b.end);
      const mine = b.user_id === who.userId;
      bar.append(h('span', { class: `day-busy ${mine ? 'day-busy-mine' : ''}`, 'data-busy': `${fmtTime(b.start, tz)}-${fmtTime(b.end, tz)}`,
        title: `${fmtTime(b.start, tz)}–${fmtTime(b.end, tz)} ${mine ? 'your booking' : 'booked by your company'}`,
        style: { left: pct(a), width: `calc(${pct(z)} - ${pct(a)})` } }));
    }
    const [sh, sm] = draft.time.split(':').map(Number);
    const s0 = sh * 60 + sm;
    bar.append(h('span', { class: 'day-chosen', style: { left: pct(s0), width: `calc(${pct(s0 + draft.minutes)} - ${pct(s0)})` } }));
    const list = busy.length
      ? h('ul', { class: 'busy-list' }, busy.map((b) => h('li', {}, `${fmtTime(b.start, tz)}–${fmtTime(b.end, tz)}`,
        h('span', { class: 'muted' }, b.user_id === who.userId ? ' · your booking' : ' · your company'))))
      : h('p', { class: 'muted small' }, 'None of the bookings you can see falls on this day.');
    clear(availability).append(
      h('h3', { class: 'subhead' }, `${req.r.name} on this day`),
      bar,
      h('div', { class: 'legend small' }, h('span', { class: 'legend-item legend-busy' }, 'Busy'),
        h('span', { class: 'legend-item legend-chosen' }, 'Your choice')),
      list,
      h('p', { class: 'hint' }, 'This shows the bookings your key can see. Other companies’ bookings are not visible to tenants; if one holds this time, the booking is refused as taken when you pay.'));
  }

  async function quote() {
    clearErrors(form);
    const req = request();
    if (!req) {
      clear(panel).append(...panelHead('Choose a space and a time to see the price.'));
      clear(availability);
      return;
    }
    const seq = ++quoteSeq;
    clear(panel).append(...panelHead(), loading('Getting the price…'));
    let q;
    let busy = [];
    try {
      [q, busy] = await Promise.all([post('/v1/quotes', req.body), busyOf(req).catch(() => [])]);
    } catch (err) {
      if (seq !== quoteSeq) return;
      clear(panel).append(...panelHead(), summaryBlock(req));
      if (err.field) showError(form, err);
      panel.append(h('div', { class: 'alert alert-error', role: 'alert', id: err.code === 'slot_taken' ? 'slot-taken' : 'quote-error' },
        err.code === 'slot_taken' ? `This time is taken. ${err.message} Choose another time.` : err.message));
      return;
    }
    if (seq !== quoteSeq) return;
    drawAvailability(req, busy);
    const clash = busy.find((b) => b.start < req.body.end && b.end > req.body.start);
    showQuote(req, q, clash);
    if (!q.credits || !(q.payment_methods || []).includes('credits')) explainNoCredits(req, q, seq);
  }

  /** Why credits cannot pay: the quote's credits_unavailable_reason says
   *  it with the figures. (Older servers without it: read from the
   *  person's wallet — no credits of this unit, none valid on the day, or
   *  none for this space.) */
  async function explainNoCredits(req, q, seq) {
    const box = panel.querySelector('#no-credits-reason');
    if (!box) return;
    if (q.credits_unavailable_reason) {
      box.textContent = q.credits_unavailable_reason.message;
      box.dataset.reason = q.credits_unavailable_reason.code;
      return;
    }
    const c = req.r.pricing && req.r.pricing.credits;
    const building = req.b || {};
    if (!c) {
      box.textContent = 'This space does not take credits: it has no credit price.';
      return;
    }
    if (building.payment && !building.payment.credits) {
      box.textContent = `${building.name} does not accept credits as a payment method.`;
      return;
    }
    const unit = c.unit || 'hour';
    if (q.credits && typeof q.credits.available === 'number') {
      box.textContent = `It costs ${fmtCredits(q.credits.amount, q.credits.unit)} and ${fmtCredits(q.credits.available, q.credits.unit)} of yours can pay for it. Credits pay the whole price or nothing.`;
      return;
    }
    let w;
    try {
      w = await get(`/v1/users/${who.userId}/wallet`, { unit });
    } catch (err) {
      box.textContent = `None of your ${unitName(unit, 2)} can pay for this space.`;
      return;
    }
    if (seq !== quoteSeq) return;
    const lots = (w.lots || []).filter((l) => l.unit === unit && (l.balance === 'unlimited' || l.balance > 0 || l.granted === 'unlimited'));
    const at = req.body.start;
    const valid = lots.filter((l) => l.valid_from <= at && (!l.valid_until || l.valid_until > at));
    const tz = building.timezone || 'UTC';
    if (!lots.length) {
      box.textContent = `This space is paid in ${unitName(unit, 2)}, and you have no ${unitName(unit, 2)} left.`;
    } else if (!valid.length) {
      const next = lots.map((l) => l.valid_from).filter((t) => t > at).sort()[0];
      box.textContent = `None of your ${unitName(unit, 2)} is valid on ${fmtDate(localDate(at, tz))}${next ? `; the next become valid on ${fmtDate(localDate(next, tz))}` : ''}.`;
    } else if (valid.every((l) => l.scope !== 'all')) {
      box.textContent = `Your ${unitName(unit, 2)} are for specific resources only, and ${req.r.name} is not one of them.`;
    } else {
      box.textContent = `None of your ${unitName(unit, 2)} may pay for this space (the building's eligibility rules decide which credits may pay).`;
    }
  }

  function summaryBlock(req) {
    return h('div', { class: 'booking-summary' },
      h('div', { class: 'booking-summary-name' }, req.r.name),
      h('div', { class: 'muted' }, `${req.b ? req.b.name : ''}`),
      h('div', {}, fmtRange(req.body.start, req.body.end, req.b ? req.b.timezone : 'UTC')));
  }

  function showQuote(req, q, clash) {
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
    if (!q.credits || !methods.includes('credits')) {
      panel.append(h('div', { class: 'alert alert-info', id: 'no-credits' },
        h('strong', {}, 'Credits can’t pay for this booking. '), h('span', { id: 'no-credits-reason' }, 'Checking why…')));
    }
    const tz = req.b ? req.b.timezone : 'UTC';
    // The quote's slot covers every company's bookings, not only the ones
    // this key can list.
    const other = !clash && q.slot && !q.slot.available && q.slot.conflicts.length ? q.slot.conflicts[0] : null;
    if (clash) {
      panel.append(h('div', { class: 'alert alert-error', role: 'alert', id: 'slot-taken' },
        h('strong', {}, 'This time is taken. '),
        `${req.r.name} is booked ${fmtTime(clash.start, tz)}–${fmtTime(clash.end, tz)}${clash.user_id === who.userId ? ' by you' : ' by your company'}. Choose another time.`));
    } else if (other) {
      panel.append(h('div', { class: 'alert alert-error', role: 'alert', id: 'slot-taken' },
        h('strong', {}, 'This time is taken. '),
        `${req.r.name} is booked ${fmtTime(other.start, tz)}–${fmtTime(other.end, tz)}. Choose another time.`));
    }
    const past = q.slot && q.slot.in_past;
    if (past) {
      panel.append(h('div', { class: 'alert alert-error', role: 'alert', id: 'slot-past' },
        h('strong', {}, 'This time has passed. '), 'A booking must start later than now; choose another time.'));
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
    if (clash || other || past) pay.disabled = true;
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
        if (err.code === 'slot_taken') {
          busyCache.clear();
          pay.disabled = true;
        }
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
    busyCache.clear();
    panel.querySelector('#booking-confirmation').focus();
  }

  drawList();
  syncDurations();
  quote();
}

