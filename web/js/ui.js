// ui.js - small DOM helpers, formatting and the shared widgets (sortable
// tables, tiles, loading / empty / error states, field errors, toasts).

/** h('div', {class: 'x', onclick: fn}, child, ...) - children may be
 *  strings, nodes, arrays, or null/false (skipped). */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'html') el.innerHTML = v; // only for trusted, static markup
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked' || k === 'disabled' || k === 'selected' || k === 'hidden' || k === 'required' || k === 'multiple') el[k] = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

let idSeq = 0;
export function uid(prefix = 'f') {
  idSeq += 1;
  return `${prefix}-${idSeq}`;
}

// ---------- formatting ----------

const numberFmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 3 });

/** A credit amount as the API gave it: 1.5 stays 1.5; "unlimited" reads
 *  "Unlimited"; null reads as a dash. */
export function fmtAmount(v) {
  if (v === 'unlimited') return 'Unlimited';
  if (v === null || v === undefined || v === '') return '—';
  if (typeof v === 'number') return numberFmt.format(v);
  return String(v);
}

export function unitName(unit, amount) {
  const one = amount === 1;
  if (unit === 'hour') return one ? 'hour' : 'hours';
  if (unit === 'coin') return one ? 'coin' : 'coins';
  return unit || '';
}

export function unitTitle(unit) {
  return unit === 'coin' ? 'Coins' : unit === 'hour' ? 'Hours' : unit || '';
}

/** "1.5 hours", "Unlimited hours", "105 coins". */
export function fmtCredits(v, unit) {
  if (v === 'unlimited') return `Unlimited ${unitName(unit, 2)}`;
  if (v === null || v === undefined) return '—';
  return `${fmtAmount(v)} ${unitName(unit, v)}`;
}

const currencyDigits = new Map();
function minorDigits(currency) {
  if (!currencyDigits.has(currency)) {
    let d = 2;
    try {
      d = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits;
    } catch (e) { /* unknown code: assume cents */ }
    currencyDigits.set(currency, d);
  }
  return currencyDigits.get(currency);
}

/** Money in minor units with its currency: 7000 USD -> "$70.00". */
export function fmtMoney(minor, currency) {
  if (minor === null || minor === undefined) return '—';
  if (!currency) return numberFmt.format(minor);
  const d = minorDigits(currency);
  try {
    return new Intl.NumberFormat(undefined, { style: 'currency', currency }).format(minor / 10 ** d);
  } catch (e) {
    return `${(minor / 10 ** d).toFixed(d)} ${currency}`;
  }
}

export function toMinor(major, currency) {
  return Math.round(Number(major) * 10 ** minorDigits(currency));
}

export function fromMinor(minor, currency) {
  return minor / 10 ** minorDigits(currency);
}

/** "2026-03-01" -> "1 Mar 2026" (a calendar date, no zone). */
export function fmtDate(ymd) {
  if (!ymd) return '—';
  const [y, m, d] = ymd.slice(0, 10).split('-').map(Number);
  return new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' })
    .format(new Date(Date.UTC(y, m - 1, d)));
}

/** "2026-03" -> "Mar 2026". */
export function fmtMonth(ym) {
  const [y, m] = ym.split('-').map(Number);
  return new Intl.DateTimeFormat(undefined, { month: 'short', year: 'numeric', timeZone: 'UTC' })
    .format(new Date(Date.UTC(y, m - 1, 1)));
}

export function fmtDateTime(iso, tz, opts = {}) {
  if (!iso) return '—';
  return new Intl.DateTimeFormat(undefined, {
    weekday: opts.weekday === false ? undefined : 'short', day: 'numeric', month: 'short', year: 'numeric',
    hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone: tz || 'UTC',
  }).format(new Date(iso));
}

export function fmtTime(iso, tz) {
  return new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone: tz || 'UTC' })
    .format(new Date(iso));
}

/** "Fri 20 Mar 2026, 10:00–11:30". */
export function fmtRange(start, end, tz) {
  return `${fmtDateTime(start, tz)}–${fmtTime(end, tz)}`;
}

/** The calendar date (YYYY-MM-DD) of an instant in a zone. */
export function localDate(iso, tz) {
  const parts = new Intl.DateTimeFormat('en-CA', { year: 'numeric', month: '2-digit', day: '2-digit', timeZone: tz || 'UTC' })
    .formatToParts(new Date(iso));
  const get = (t) => parts.find((p) => p.type === t).value;
  return `${get('year')}-${get('month')}-${get('day')}`;
}

/** The last day a lot can be used: the day before valid_until's instant
 *  (valid_until is the exclusive end, local midnight). */
export function lastValidDay(validUntil, tz) {
  if (!validUntil) return null;
  return localDate(new Date(new Date(validUntil).getTime() - 1000).toISOString(), tz);
}

function zoneOffsetMs(date, tz) {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit',
  }).formatToParts(date);
  const v = (t) => Number(parts.find((p) => p.type === t).value);
  const asUtc = Date.UTC(v('year'), v('month') - 1, v('day'), v('hour') % 24, v('minute'), v('second'));
  return asUtc - date.getTime();
}

/** A wall-clock date and time in an IANA zone -> the instant (Date). */
export function zonedToUtc(ymd, hm, tz) {
  const [y, m, d] = ymd.split('-').map(Number);
  const [hh, mm] = hm.split(':').map(Number);
  const guess = Date.UTC(y, m - 1, d, hh, mm);
  let t = guess - zoneOffsetMs(new Date(guess), tz);
  t = guess - zoneOffsetMs(new Date(t), tz); // settle across a DST change
  return new Date(t);
}

export function isoNoMillis(date) {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function monthAdd(ym, n) {
  const [y, m] = ym.split('-').map(Number);
  const t = new Date(Date.UTC(y, m - 1 + n, 1));
  return `${t.getUTCFullYear()}-${String(t.getUTCMonth() + 1).padStart(2, '0')}`;
}

export function todayYmd() {
  const t = new Date();
  return `${t.getFullYear()}-${String(t.getMonth() + 1).padStart(2, '0')}-${String(t.getDate()).padStart(2, '0')}`;
}

export function addDays(ymd, n) {
  const [y, m, d] = ymd.split('-').map(Number);
  const t = new Date(Date.UTC(y, m - 1, d + n));
  return t.toISOString().slice(0, 10);
}

/** The first day of the period after the one holding `ymd` (calendar
 *  weeks from Monday, months, quarters, years), or null for `none`. */
export function nextPeriodStart(ymd, recurrence) {
  const [y, m, d] = ymd.split('-').map(Number);
  const iso = (t) => t.toISOString().slice(0, 10);
  if (recurrence === 'weekly') {
    const t = new Date(Date.UTC(y, m - 1, d));
    const dow = (t.getUTCDay() + 6) % 7; // Monday 0
    return iso(new Date(Date.UTC(y, m - 1, d + 7 - dow)));
  }
  if (recurrence === 'monthly') return iso(new Date(Date.UTC(y, m, 1)));
  if (recurrence === 'quarterly') return iso(new Date(Date.UTC(y, Math.floor((m - 1) / 3) * 3 + 3, 1)));
  if (recurrence === 'yearly') return iso(new Date(Date.UTC(y + 1, 0, 1)));
  return null;
}

export const PERIOD_NOUN = { weekly: 'week', monthly: 'month', quarterly: 'quarter', yearly: 'year' };

export function titleCase(s) {
  return String(s || '').replace(/_/g, ' ').replace(/^\w/, (c) => c.toUpperCase());
}

export const RECURRENCE_LABEL = { none: 'Once', weekly: 'Weekly', monthly: 'Monthly', quarterly: 'Quarterly', yearly: 'Yearly' };
export const METHOD_LABEL = { credits: 'Credits', invoice: 'Invoice', card: 'Card' };

export function methodBadge(method) {
  return h('span', { class: `badge badge-${method || 'none'}` }, METHOD_LABEL[method] || titleCase(method || '—'));
}

export function statusBadge(status) {
  const cls = { confirmed: 'ok', active: 'ok', cancelled: 'muted', ended: 'muted', expired: 'muted', upcoming: 'info' }[status] || 'muted';
  return h('span', { class: `badge badge-${cls}` }, titleCase(status || '—'));
}

// ---------- states ----------

export function loading(text = 'Loading…') {
  return h('div', { class: 'state state-loading', role: 'status' },
    h('span', { class: 'spinner', 'aria-hidden': 'true' }), h('span', {}, text));
}

export function emptyState(title, text, action) {
  return h('div', { class: 'state state-empty' },
    h('div', { class: 'state-icon', 'aria-hidden': 'true' }, '∅'),
    h('p', { class: 'state-title' }, title),
    text ? h('p', { class: 'state-text' }, text) : null,
    action || null);
}

export function errorBox(err, onRetry) {
  const msg = err && err.message ? err.message : String(err);
  return h('div', { class: 'alert alert-error', role: 'alert' },
    h('strong', {}, 'Something went wrong. '),
    h('span', {}, msg),
    onRetry ? h('button', { type: 'button', class: 'btn btn-small btn-ghost', onclick: onRetry }, 'Try again') : null);
}

export function notice(text, kind = 'info') {
  return h('div', { class: `alert alert-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
}

/** Runs `load()` with a loading state in `box`, then `show(result)`; on an
 *  error shows it in words with a retry button. */
export async function withLoading(box, load, show, text) {
  clear(box).append(loading(text));
  try {
    const out = await load();
    clear(box);
    show(out);
  } catch (err) {
    clear(box).append(errorBox(err, () => withLoading(box, load, show, text)));
  }
}

// ---------- toasts ----------

export function toast(message, kind = 'ok') {
  const box = document.getElementById('toasts');
  if (!box) return;
  const t = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message);
  box.append(t);
  setTimeout(() => t.classList.add('toast-out'), 4200);
  setTimeout(() => t.remove(), 4800);
}

// ---------- field errors ----------

export function clearErrors(form) {
  for (const s of form.querySelectorAll('[data-error-for]')) {
    s.textContent = '';
    s.hidden = true;
  }
  for (const c of form.querySelectorAll('[aria-invalid="true"]')) c.removeAttribute('aria-invalid');
}

/** Shows an API error beside the field it concerns (details.field, e.g.
 *  "lines.amount" or "schedule.end"): the slot [data-error-for=field], or the
 *  nearest parent field's slot ("lines.amount" -> "lines"), or the form's
 *  general slot [data-error-for=""]. Marks the matching controls invalid and
 *  focuses the first. */
export function showError(form, err) {
  let f = err.field || '';
  let slot = null;
  for (;;) {
    slot = form.querySelector(`[data-error-for="${CSS.escape(f)}"]`);
    if (slot || f === '') break;
    f = f.includes('.') ? f.slice(0, f.lastIndexOf('.')) : '';
  }
  if (!slot) {
    slot = h('div', { class: 'field-error form-error', 'data-error-for': '', role: 'alert' });
    form.prepend(slot);
  }
  slot.textContent = err.message;
  slot.hidden = false;
  const controls = err.field ? form.querySelectorAll(`[data-field="${CSS.escape(err.field)}"]`) : [];
  for (const c of controls) {
    c.setAttribute('aria-invalid', 'true');
    // Editing the field takes the red off it; the message stays until the
    // next submit so it can still be read.
    c.addEventListener('input', () => c.removeAttribute('aria-invalid'), { once: true });
  }
  const focusable = controls[0] || null;
  if (focusable && typeof focusable.focus === 'function') focusable.focus();
  else slot.scrollIntoView({ block: 'center', behavior: 'smooth' });
  return slot;
}

/** Shows several field errors at once (a form checked before sending):
 *  each message goes to its field's slot (messages for one slot are joined),
 *  every control named is marked invalid, and the first is focused. `errs`
 *  are {field, message, input?}. */
export function showErrors(form, errs) {
  const bySlot = new Map();
  for (const err of errs) {
    let f = err.field || '';
    let slot = null;
    for (;;) {
      slot = form.querySelector(`[data-error-for="${CSS.escape(f)}"]`);
      if (slot || f === '') break;
      f = f.includes('.') ? f.slice(0, f.lastIndexOf('.')) : '';
    }
    if (!slot) {
      slot = h('div', { class: 'field-error form-error', 'data-error-for': '', role: 'alert' });
      form.prepend(slot);
    }
    if (!bySlot.has(slot)) bySlot.set(slot, []);
    if (!bySlot.get(slot).includes(err.message)) bySlot.get(slot).push(err.message);
    const controls = err.input ? [err.input]
      : err.field ? [...form.querySelectorAll(`[data-field="${CSS.escape(err.field)}"]`)] : [];
    for (const c of controls) c.setAttribute('aria-invalid', 'true');
  }
  for (const [slot, messages] of bySlot) {
    slot.textContent = messages.join(' ');
    slot.hidden = false;
  }
  const first = errs.find((e) => e.input) || null;
  if (first && typeof first.input.focus === 'function') first.input.focus();
}

/** Takes the error off one field as soon as the person changes it: its
 *  slot empties and its controls lose the red. A message that no longer
 *  describes the form must not stay on screen. */
export function clearFieldError(form, fieldName) {
  const slot = form.querySelector(`[data-error-for="${CSS.escape(fieldName)}"]`);
  if (slot) {
    slot.textContent = '';
    slot.hidden = true;
  }
  for (const c of form.querySelectorAll(`[data-field="${CSS.escape(fieldName)}"]`)) c.removeAttribute('aria-invalid');
}

/** Clears a field's message as soon as that field is edited (input or
 *  change on a control with data-field), so no stale error stays up. */
export function clearErrorsOnEdit(form) {
  const onEdit = (e) => {
    const f = e.target && e.target.dataset ? e.target.dataset.field : '';
    if (f) clearFieldError(form, f);
  };
  form.addEventListener('input', onEdit);
  form.addEventListener('change', onEdit);
}

/** A modal yes/no question; resolves true when confirmed. */
export function confirmDialog(title, text, confirmLabel, { danger = false, id = 'confirm-dialog' } = {}) {
  return new Promise((resolve) => {
    const no = h('button', { type: 'button', class: 'btn btn-ghost' }, 'Cancel');
    const yes = h('button', { type: 'button', class: `btn ${danger ? 'btn-danger' : 'btn-primary'}`, id: `${id}-yes` }, confirmLabel);
    const el = h('dialog', { class: 'dialog dialog-small', id, 'aria-labelledby': `${id}-title` },
      h('div', { class: 'dialog-form' },
        h('h2', { class: 'dialog-title', id: `${id}-title` }, title),
        h('p', {}, text),
        h('div', { class: 'dialog-actions' }, no, yes)));
    let answer = false;
    no.addEventListener('click', () => el.close());
    yes.addEventListener('click', () => { answer = true; el.close(); });
    el.addEventListener('close', () => { el.remove(); resolve(answer); });
    document.body.append(el);
    el.showModal();
    no.focus();
  });
}

/** A small bar chart as inline SVG: `series` [{label, values, cls}] over
 *  `labels` (one group of bars per label). Text equivalents go in the
 *  title; no library. */
export function barChartSvg(labels, series, { height = 170, title = '', width: widthWanted = 0 } = {}) {
  const NS = 'http://www.w3.org/2000/svg';
  const el = (tag, attrs, text) => {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  };
  // Drawn at the size it is shown (the caller passes its box's width), so
  // the axis text keeps its size on a phone and on a wide screen.
  const width = Math.max(280, widthWanted || labels.length * 120);
  const padL = 34, padB = 22, padT = 10;
  const plotH = height - padB - padT;
  const max = Math.max(1, ...series.flatMap((s) => s.values.filter((v) => typeof v === 'number')));
  const svg = el('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', class: 'trend-svg' });
  svg.append(el('title', {}, title));
  for (const f of [0, 0.5, 1]) {
    const y = padT + plotH - f * plotH;
    svg.append(el('line', { x1: padL, x2: width, y1: y, y2: y, class: 'trend-grid' }));
    svg.append(el('text', { x: padL - 6, y: y + 4, 'text-anchor': 'end', class: 'trend-axis' }, numberFmt.format(Math.round(max * f))));
  }
  const groupW = (width - padL) / Math.max(1, labels.length);
  const barW = Math.min(22, (groupW - 12) / series.length);
  labels.forEach((label, i) => {
    const x0 = padL + i * groupW + (groupW - barW * series.length) / 2;
    series.forEach((s, j) => {
      const v = typeof s.values[i] === 'number' ? s.values[i] : 0;
      const hgt = (v / max) * plotH;
      svg.append(el('rect', { x: x0 + j * barW, y: padT + plotH - hgt, width: barW - 2, height: Math.max(0, hgt),
        rx: 2, class: `trend-bar ${s.cls || ''}`, 'data-series': s.label, 'data-value': v }));
    });
    // Narrow groups (a phone) drop the year so the labels do not collide.
    const shown = groupW < 72 ? label.replace(/ \d{4}/, '') : label;
    svg.append(el('text', { x: padL + i * groupW + groupW / 2, y: height - 6, 'text-anchor': 'middle', class: 'trend-axis' }, shown));
  });
  return svg;
}

export function errorSlot(field) {
  return h('div', { class: 'field-error', 'data-error-for': field, role: 'alert', hidden: true });
}

/** A labelled control: label, the control, an optional hint, an error slot. */
export function field(label, control, { hint, error, cls } = {}) {
  if (!control.id) control.id = uid('f');
  const hintEl = hint ? h('div', { class: 'hint', id: `${control.id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: `field ${cls || ''}` },
    h('label', { for: control.id }, label),
    control, hintEl, error !== undefined ? errorSlot(error) : null);
}

export function select(options, { value, id, name, dataField, label, cls } = {}) {
  const s = h('select', { id, name, 'data-field': dataField, 'aria-label': label, class: cls });
  for (const o of options) {
    const opt = h('option', { value: o.value }, o.label);
    if (String(o.value) === String(value ?? '')) opt.selected = true;
    s.append(opt);
  }
  return s;
}

// ---------- tiles ----------

export function tile(label, value, sub, opts = {}) {
  return h('div', { class: `tile ${opts.accent ? 'tile-accent' : ''}`, 'data-tile': opts.key || null },
    h('div', { class: 'tile-label' }, label),
    h('div', { class: 'tile-value' }, value),
    sub ? h('div', { class: 'tile-sub' }, sub) : null);
}

// ---------- sortable table ----------

function compare(a, b) {
  const rank = (v) => (v === null || v === undefined || v === '' ? 2 : v === 'unlimited' ? 1 : 0);
  const ra = rank(a), rb = rank(b);
  if (ra !== rb) return ra - rb; // real values first, then Unlimited, then blanks
  if (ra !== 0) return 0;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a).localeCompare(String(b), undefined, { numeric: true, sensitivity: 'base' });
}

/**
 * A table whose headers sort it (click or Enter/Space on the header button).
 * columns: [{key, label, value?(row), render?(row), num?, sortable?}]
 * opts: {caption, sortKey, sortDir, empty: node, details?(row) -> [rows],
 *        rowAttrs?(row)}
 * Returns {el, setRows(rows)}.
 */
export function sortableTable(columns, rows, opts = {}) {
  let sortKey = opts.sortKey || null;
  let sortDir = opts.sortDir || 'asc';
  let data = rows.slice();
  const pageSize = opts.pageSize || 0;
  let shown = pageSize;
  const wrap = h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': opts.caption || 'Table' });
  const stack = opts.stack !== false;
  const table = h('table', { class: `table ${stack ? 'table-stack' : ''} ${opts.cls || ''}` });
  if (opts.caption) table.append(h('caption', { class: 'sr-only' }, opts.caption));
  const thead = h('thead');
  const tbody = h('tbody');
  const headRow = h('tr');
  const expandable = typeof opts.details === 'function';
  if (opts.groups) {
    // A header row above the column names, e.g. "Once" over four columns.
    const groupRow = h('tr', { class: 'group-row' });
    if (expandable) groupRow.append(h('td', { class: 'col-expand' }));
    for (const g of opts.groups) {
      groupRow.append(g.label ? h('th', { scope: 'colgroup', colspan: String(g.span), class: 'group' }, g.label)
        : h('td', { colspan: String(g.span) }));
    }
    thead.append(groupRow);
  }
  if (expandable) headRow.append(h('th', { class: 'col-expand', scope: 'col' }, h('span', { class: 'sr-only' }, 'Details')));
  const ths = [];
  for (const c of columns) {
    const th = h('th', { scope: 'col', class: c.num ? 'num' : '' });
    if (c.sortable === false) {
      th.append(c.label);
    } else {
      const btn = h('button', { type: 'button', class: 'sort', 'aria-label': c.title ? `${c.title}, sort` : null },
        c.label, h('span', { class: 'sort-icon', 'aria-hidden': 'true' }));
      btn.addEventListener('click', () => {
        if (sortKey === c.key) sortDir = sortDir === 'asc' ? 'desc' : 'asc';
        else { sortKey = c.key; sortDir = c.num ? 'desc' : 'asc'; }
        draw();
      });
      th.append(btn);
    }
    ths.push([c, th]);
    headRow.append(th);
  }
  thead.append(headRow);
  table.append(thead, tbody);
  wrap.append(table);
  const emptyBox = h('div', {});
  // On a phone the rows become cards and the headers are hidden: this
  // select sorts instead (CSS shows it only at narrow widths).
  const sortable = columns.filter((c) => c.sortable !== false);
  const sortSel = h('select', { class: 'sort-select', 'aria-label': `Sort ${opts.caption || 'table'}` });
  for (const c of sortable) {
    for (const dir of ['asc', 'desc']) {
      sortSel.append(h('option', { value: `${c.key}:${dir}` }, `${c.title || c.label} ${dir === 'asc' ? '↑' : '↓'}`));
    }
  }
  sortSel.addEventListener('change', () => {
    [sortKey, sortDir] = sortSel.value.split(':');
    draw();
  });
  const sortBar = stack && sortable.length ? h('div', { class: 'sort-bar' }, h('span', { 'aria-hidden': 'true' }, 'Sort by'), sortSel) : null;
  const more = h('button', { type: 'button', class: 'btn btn-secondary btn-small' });
  more.addEventListener('click', () => {
    shown += pageSize;
    draw();
    const rowsNow = tbody.querySelectorAll('tr:not(.detail-row)');
    const first = rowsNow[shown - pageSize];
    if (first) first.querySelector('button, a') ? first.querySelector('button, a').focus() : null;
  });
  const moreBar = h('div', { class: 'table-more' }, h('span', { class: 'muted small' }), more);
  const el = h('div', { class: 'table-block' }, sortBar, wrap, moreBar, emptyBox);

  const valueOf = (c, r) => (c.value ? c.value(r) : r[c.key]);
  const cell = (c, r) => {
    const td = h('td', { class: c.num ? 'num' : '', 'data-label': c.title || c.label });
    const v = c.render ? c.render(r) : fmtCell(valueOf(c, r));
    td.append(v instanceof Node ? v : document.createTextNode(v ?? ''));
    return td;
  };

  function draw() {
    for (const [c, th] of ths) {
      th.setAttribute('aria-sort', c.key === sortKey ? (sortDir === 'asc' ? 'ascending' : 'descending') : 'none');
    }
    if (sortKey) sortSel.value = `${sortKey}:${sortDir}`;
    let sorted = data;
    if (sortKey) {
      const c = columns.find((x) => x.key === sortKey);
      sorted = data.slice().sort((a, b) => compare(valueOf(c, a), valueOf(c, b)) * (sortDir === 'asc' ? 1 : -1));
    }
    clear(tbody);
    const limit = pageSize ? Math.min(shown, sorted.length) : sorted.length;
    moreBar.hidden = !pageSize || sorted.length <= limit;
    moreBar.firstChild.textContent = `Showing ${limit} of ${sorted.length}`;
    more.textContent = `Show ${Math.min(pageSize, sorted.length - limit)} more`;
    for (const r of sorted.slice(0, limit)) {
      const tr = h('tr', opts.rowAttrs ? opts.rowAttrs(r) : {});
      let detailRows = [];
      if (expandable) {
        const details = opts.details(r) || [];
        const btn = h('button', { type: 'button', class: 'btn-icon expand', 'aria-expanded': 'false',
          'aria-label': `Show months for ${opts.rowLabel ? opts.rowLabel(r) : 'this row'}` }, h('span', { 'aria-hidden': 'true' }, '▸'));
        btn.addEventListener('click', () => {
          const open = btn.getAttribute('aria-expanded') !== 'true';
          btn.setAttribute('aria-expanded', String(open));
          for (const d of detailRows) d.hidden = !open;
        });
        tr.append(h('td', { class: 'col-expand' }, details.length ? btn : null));
        detailRows = details.map((d) => {
          const dtr = h('tr', { class: 'detail-row', hidden: true });
          dtr.append(h('td', { class: 'col-expand' }));
          for (const c of columns) dtr.append(cell(c, d));
          return dtr;
        });
      }
      for (const c of columns) tr.append(cell(c, r));
      tbody.append(tr, ...detailRows);
    }
    clear(emptyBox);
    wrap.hidden = data.length === 0;
    if (sortBar) sortBar.hidden = data.length < 2;
    if (data.length === 0) emptyBox.append(opts.empty || emptyState('Nothing to show', 'No rows match these filters.'));
  }

  draw();
  return { el, setRows(r) { data = r.slice(); shown = pageSize; draw(); } };
}

function fmtCell(v) {
  if (typeof v === 'number' || v === 'unlimited') return fmtAmount(v);
  if (v === null || v === undefined || v === '') return '—';
  return String(v);
}

// ---------- misc ----------

export function pageHeader(title, subtitle, actions) {
  return h('div', { class: 'page-header' },
    h('div', {}, h('h1', { tabindex: '-1', class: 'page-title' }, title), subtitle ? h('p', { class: 'page-sub' }, subtitle) : null),
    actions ? h('div', { class: 'page-actions' }, actions) : null);
}

export function card(title, ...children) {
  return h('section', { class: 'card' }, title ? h('h2', { class: 'card-title' }, title) : null, ...children);
}

export function debounce(fn, ms) {
  let t = null;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}

/** A button that shows a busy state while `action` runs. */
export async function busy(btn, action, busyText) {
  const old = btn.textContent;
  btn.disabled = true;
  btn.setAttribute('aria-busy', 'true');
  if (busyText) btn.textContent = busyText;
  try {
    return await action();
  } finally {
    btn.disabled = false;
    btn.removeAttribute('aria-busy');
    btn.textContent = old;
  }
}
