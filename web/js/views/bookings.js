// bookings.js - the tenant's bookings with the payment method used, and
// cancelling one (POST /v1/bookings/{id}/cancel) with what it would give
// back shown first (GET /v1/bookings/{id}/refund).
import { get, getAll, post, newIdempotencyKey } from '../api.js';
import {
  h, pageHeader, fmtRange, fmtCredits, fmtMoney, sortableTable, methodBadge, statusBadge, emptyState,
  withLoading, select, busy, toast,
} from '../ui.js';

let statusFilter = '';

export async function render(page, ctx, params) {
  const admin = ctx.me.role === 'tenant_admin';
  page.append(pageHeader(admin ? 'Company bookings' : 'Your bookings',
    'Every booking with how it was paid. Cancelling refunds credits by the building\'s policy.',
    h('a', { class: 'btn btn-primary', href: '#/book' }, 'Book a space')));
  const sSel = select([{ value: '', label: 'All bookings' }, { value: 'confirmed', label: 'Confirmed' }, { value: 'cancelled', label: 'Cancelled' }],
    { value: statusFilter, id: 'bookings-status' });
  page.append(h('div', { class: 'filters' },
    h('div', { class: 'filter' }, h('label', { for: 'bookings-status', class: 'filter-label' }, 'Show'), sSel)));
  const outcome = h('div', { id: 'cancel-outcome', 'aria-live': 'polite' });
  const body = h('div', { class: 'card card-flush' });
  page.append(outcome, body);
  const dialog = cancelDialog(ctx);
  page.append(dialog.el);
  sSel.addEventListener('change', () => { statusFilter = sSel.value; load(); });

  async function load() {
    await withLoading(body, async () => {
      const [bookings, resources, buildings, users] = await Promise.all([
        getAll('/v1/bookings', { status: statusFilter }), ctx.resources(), ctx.buildings(),
        admin ? ctx.users(ctx.me.tenant_id) : Promise.resolve([]),
      ]);
      return { bookings, resources, buildings, users };
    }, ({ bookings, resources, buildings, users }) => {
      const rmap = new Map(resources.map((r) => [r.id, r]));
      const bmap = new Map(buildings.map((b) => [b.id, b]));
      const umap = new Map(users.map((u) => [u.id, u]));
      const tz = (b) => (bmap.get(b.building_id) || {}).timezone || 'UTC';
      const name = (b) => (rmap.get(b.resource_id) || { name: b.resource_id }).name;
      const t = sortableTable([
        { key: 'start', label: 'When', render: (b) => h('span', { class: 'nowrap' }, fmtRange(b.start, b.end, tz(b))) },
        { key: 'resource', label: 'Resource', value: name, render: (b) => h('span', {}, h('strong', {}, name(b)),
          h('span', { class: 'sub block' }, (bmap.get(b.building_id) || {}).name || '')) },
        admin ? { key: 'user', label: 'Person', value: (b) => (umap.get(b.user_id) || { name: b.user_id }).name } : null,
        { key: 'payment_method', label: 'Paid with', render: (b) => methodBadge(b.payment_method) },
        { key: 'price', label: 'Price', num: true, value: (b) => price(b), render: (b) => price(b) },
        { key: 'status', label: 'Status', render: (b) => statusBadge(b.status) },
        { key: 'refund', label: 'Refund', value: (b) => refundText(b), render: (b) => refundText(b) || '—' },
        // A booking that has started is history: no Cancel (the API still
        // lets an operator cancel one, PRODUCT.md S7).
        { key: 'act', label: 'Actions', sortable: false, render: (b) => (b.status === 'confirmed' && Date.parse(b.start) > ctx.serverNow().getTime()
          ? h('button', { type: 'button', class: 'btn btn-danger-ghost btn-small', 'data-cancel': b.id,
            'aria-label': `Cancel ${name(b)} on ${fmtRange(b.start, b.end, tz(b))}`,
            onclick: () => dialog.open(b, name(b), tz(b), async (out) => {
              outcome.replaceChildren(refundNotice(out));
              toast('Booking cancelled');
              await load();
              outcome.querySelector('.alert').focus();
            }) }, 'Cancel')
          : '') },
      ].filter(Boolean), bookings, {
        caption: 'Bookings', sortKey: 'start', sortDir: 'desc', rowAttrs: (b) => ({ 'data-booking': b.id }),
        empty: emptyState('No bookings yet', 'Book a meeting room or another space to see it here.',
          h('a', { class: 'btn btn-secondary', href: '#/book' }, 'Book a space')),
      });
      body.append(t.el);
    }, 'Loading bookings…');
  }
  await load();
  if (params.highlight) {
    const row = body.querySelector(`[data-booking="${CSS.escape(params.highlight)}"]`);
    if (row) row.classList.add('row-highlight');
  }
}

export function price(b) {
  if (b.payment_method === 'credits' && b.credits) return fmtCredits(b.credits.amount, b.credits.unit);
  if (b.money) return fmtMoney(b.money.amount, b.money.currency);
  return '—';
}

function refundText(b) {
  if (b.status !== 'cancelled' || !b.refund) return '';
  if (b.payment_method === 'credits') return b.credits ? fmtCredits(b.refund.credits, b.credits.unit) : String(b.refund.credits);
  return b.money ? fmtMoney(b.refund.money, b.money.currency) : '';
}

export function refundNotice(out) {
  const b = out.booking || {};
  const r = out.refund || {};
  let text;
  if (b.payment_method === 'credits' && b.credits) {
    text = r.credits > 0
      ? `${fmtCredits(r.credits, b.credits.unit)} refunded to the wallet.`
      : 'No credits were refunded: the cancellation came too close to the start.';
  } else if (b.money) {
    text = r.money > 0 ? `A refund of ${fmtMoney(r.money, b.money.currency)} is recorded.` : 'No refund is due.';
  } else {
    text = '';
  }
  return h('div', { class: 'alert alert-success', role: 'status', tabindex: '-1', id: 'refund-notice' },
    h('strong', {}, 'Booking cancelled. '), text);
}

function cancelDialog(ctx) {
  const el = h('dialog', { class: 'dialog dialog-small', 'aria-labelledby': 'cancel-title', id: 'cancel-dialog' });
  const text = h('p', {});
  const back = h('div', { class: 'refund-preview', id: 'refund-preview' });
  const reason = h('input', { type: 'text', id: 'cancel-reason', maxlength: '200', placeholder: 'Optional' });
  const err = h('div', { class: 'field-error', role: 'alert', hidden: true });
  const keep = h('button', { type: 'button', class: 'btn btn-ghost' }, 'Keep booking');
  const confirm = h('button', { type: 'button', class: 'btn btn-danger', id: 'cancel-confirm' }, 'Cancel booking');
  el.append(h('div', { class: 'dialog-form' },
    h('h2', { class: 'dialog-title', id: 'cancel-title' }, 'Cancel this booking?'),
    text,
    back,
    h('div', { class: 'field' }, h('label', { for: 'cancel-reason' }, 'Reason'), reason),
    err,
    h('div', { class: 'dialog-actions' }, keep, confirm)));
  keep.addEventListener('click', () => el.close());
  let current = null;
  confirm.addEventListener('click', () => busy(confirm, async () => {
    err.hidden = true;
    try {
      const body = reason.value.trim() ? { reason: reason.value.trim() } : {};
      const out = await post(`/v1/bookings/${current.booking.id}/cancel`, body, current.key);
      el.close();
      await current.done(out);
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
    }
  }, 'Cancelling…'));
  return {
    el,
    open(booking, name, tz, done) {
      current = { booking, done, key: newIdempotencyKey() };
      text.textContent = `${name}, ${fmtRange(booking.start, booking.end, tz)} (paid with ${booking.payment_method}).`;
      back.replaceChildren(h('p', { class: 'muted' }, 'Checking what you would get back…'));
      const asked = current;
      get(`/v1/bookings/${booking.id}/refund`).then((p) => {
        if (current !== asked) return;
        back.replaceChildren(...refundPreview(booking, p));
      }, (e) => {
        if (current !== asked) return;
        back.replaceChildren(h('p', { class: 'muted small' }, `${e.message} The refund is decided when you confirm.`));
      });
      reason.value = '';
      err.hidden = true;
      el.showModal();
      keep.focus();
    },
  };
}


/** What the server says a cancel now would give back (the building's own
 *  refund policy, for whoever is asking). */
function refundPreview(booking, p) {
  if (p.payment_method === 'credits') {
    const unit = p.unit || (booking.credits && booking.credits.unit);
    const again = (p.lots || []).filter((l) => l.expires_again).reduce((n, l) => n + l.amount, 0);
    return [
      h('p', {}, h('strong', { 'data-refund-preview': String(p.refund.credits) },
        p.refund.credits > 0 ? `You would get back ${fmtCredits(p.refund.credits, unit)}` : 'You would get nothing back'),
        ` of the ${fmtCredits(p.paid, unit)} paid.`),
      again > 0 ? h('p', { class: 'muted small' }, `${fmtCredits(again, unit)} of it would go back to credits that have already expired, and expire again at once.`) : null,
      h('p', { class: 'muted small' }, 'Worked out now by the building’s refund policy; the earlier you cancel, the more comes back.'),
    ].filter(Boolean);
  }
  return [h('p', {}, h('strong', { 'data-refund-preview': String(p.refund.money) },
    p.refund.money > 0 ? `A refund of ${fmtMoney(p.refund.money, p.currency)} would be recorded.` : 'No refund would be due.'))];
}
