// policies.js - the Lua policies of each building: the active version of
// each kind, its history, and uploading a new version (PUT
// /v1/buildings/{id}/policies/{kind}, Content-Type text/x-lua). A refused
// version (422 policy_error) shows the compiler's or self-check's words; the
// running version stays active.
import { api, get, post, newIdempotencyKey } from '../api.js';
import {
  h, clear, pageHeader, select, emptyState, notice, loading, errorBox, fmtDateTime, toast, busy, titleCase,
  sortableTable, confirmDialog, fmtAmount, fmtMoney, localDate, addDays, fmtDate,
} from '../ui.js';

const SIMULATED_KINDS = ['pricing', 'refund', 'validate'];   // what POST .../simulate covers
const DIFF_LINES_MAX = 3000;                                  // per side; beyond it the diff is not drawn

const KINDS = [
  ['pricing', 'Money and credit price of a booking'],
  ['eligibility', 'Which allocation lines may pay'],
  ['order', 'Order in which lots are spent'],
  ['rollover', 'What carries into the next period'],
  ['refund', 'What a cancellation gives back'],
  ['validate', 'Whether a booking may go ahead'],
];

let chosenBuilding = '';
let chosenKind = 'pricing';

export async function render(page, ctx) {
  const buildings = await ctx.buildings();
  if (!chosenBuilding || !buildings.some((b) => b.id === chosenBuilding)) chosenBuilding = buildings[0] ? buildings[0].id : '';
  page.append(pageHeader('Policies', 'The Lua rules each building runs: pricing, eligibility, spending order, rollover, refunds and validation.'));
  if (!buildings.length) {
    page.append(emptyState('No buildings yet', 'Policies belong to buildings.'));
    return;
  }
  const bSel = select(buildings.map((b) => ({ value: b.id, label: b.name })), { value: chosenBuilding, id: 'pol-building' });
  page.append(h('div', { class: 'filters' },
    h('div', { class: 'filter' }, h('label', { for: 'pol-building', class: 'filter-label' }, 'Building'), bSel)));
  const activeBox = h('section', { class: 'card card-flush', 'aria-labelledby': 'pol-active-title' });
  const kindBox = h('section', { class: 'card', id: 'policy-kind', 'aria-labelledby': 'pol-kind-title' });
  page.append(activeBox, kindBox);
  bSel.addEventListener('change', () => { chosenBuilding = bSel.value; load(); });

  let active = null;

  async function load() {
    clear(activeBox).append(loading('Loading policies…'));
    clear(kindBox);
    try {
      active = (await get(`/v1/buildings/${chosenBuilding}/policies`)).policies || {};
    } catch (err) {
      active = null;
      clear(activeBox);
      if (err.status === 404 || err.status === 405) {
        activeBox.append(h('div', { class: 'card-pad' }, notice(
          'This server does not offer policy management over HTTP yet (GET /v1/buildings/{id}/policies answered '
          + `${err.status}). Policies can still be changed with the admin REPL or on disk with a reload.`, 'info')));
        activeBox.dataset.unavailable = 'true';
      } else {
        activeBox.append(errorBox(err, load));
      }
      showKind();
      return;
    }
    clear(activeBox);
    activeBox.append(h('h2', { class: 'card-title card-pad-title', id: 'pol-active-title' }, 'Active versions'));
    const rows = KINDS.map(([kind, what]) => ({ kind, what, ...(active[kind] || {}) }));
    const t = sortableTable([
      { key: 'kind', label: 'Kind', render: (r) => h('span', {}, h('strong', {}, titleCase(r.kind)), h('span', { class: 'sub block' }, r.what)) },
      { key: 'version', label: 'Version', render: (r) => versionBadge(r.version) },
      { key: 'sha256', label: 'SHA-256', render: (r) => (r.sha256 ? h('code', { title: r.sha256 }, r.sha256.slice(0, 12)) : '—') },
      { key: 'loaded_at', label: 'Loaded', render: (r) => (r.loaded_at ? fmtDateTime(r.loaded_at, 'UTC', { weekday: false }) : '—') },
      { key: 'author', label: 'By', render: (r) => r.author || '—' },
      { key: 'act', label: 'Actions', sortable: false, render: (r) => h('button', {
        type: 'button', class: 'btn btn-secondary btn-small', 'data-kind': r.kind, 'aria-label': `Manage the ${r.kind} policy`,
        onclick: () => { chosenKind = r.kind; showKind(); kindBox.scrollIntoView({ block: 'start', behavior: 'smooth' }); },
      }, 'Manage') },
    ], rows, { caption: 'Active policy versions' });
    activeBox.append(t.el);
    showKind();
  }

  async function showKind() {
    clear(kindBox);
    const kindSel = select(KINDS.map(([k]) => ({ value: k, label: titleCase(k) })), { value: chosenKind, id: 'pol-kind' });
    kindSel.addEventListener('change', () => { chosenKind = kindSel.value; showKind(); });
    const cur = active && active[chosenKind];
    kindBox.append(h('div', { class: 'section-head' },
      h('div', {}, h('h2', { class: 'card-title', id: 'pol-kind-title' }, `${titleCase(chosenKind)} policy`),
        h('p', { class: 'muted' }, cur ? `Running: ${cur.version === 'default' ? 'the default policy' : `version ${cur.version}`}${cur.sha256 ? ` (${cur.sha256.slice(0, 12)})` : ''}.` : 'Upload a new version for this building.')),
      h('div', { class: 'filter' }, h('label', { for: 'pol-kind', class: 'filter-label' }, 'Kind'), kindSel)));

    const history = h('div', { class: 'history' });
    const editor = h('textarea', { id: 'policy-source', class: 'code', rows: '18', spellcheck: 'false', wrap: 'off', 'aria-describedby': 'policy-source-hint',
      placeholder: `-- ${chosenKind}.lua: a module returning a table of functions\nreturn {\n  -- ...\n}` });
    const gutter = h('div', { class: 'code-gutter', 'aria-hidden': 'true', id: 'policy-gutter' });
    const syncGutter = () => {
      const n = Math.max(1, editor.value.split('\n').length);
      if (gutter.childElementCount !== n) {
        const lines = [];
        for (let i = 1; i <= n; i++) lines.push(h('div', {}, String(i)));
        gutter.replaceChildren(...lines);
      }
      gutter.scrollTop = editor.scrollTop;
    };
    editor.addEventListener('input', syncGutter);
    editor.addEventListener('scroll', () => { gutter.scrollTop = editor.scrollTop; });
    const compare = h('button', { type: 'button', class: 'btn btn-secondary', id: 'policy-diff' }, 'Compare with active');
    const simulate = h('button', { type: 'button', class: 'btn btn-secondary', id: 'policy-simulate' }, 'Preview on past bookings');
    const preview = h('div', { id: 'policy-preview', 'aria-live': 'polite' });
    const simBox = h('div', { id: 'policy-sim-box', 'aria-live': 'polite' });
    const activeSource = { text: null };
    const file = h('input', { type: 'file', id: 'policy-file', accept: '.lua,text/x-lua,text/plain' });
    const upload = h('button', { type: 'button', class: 'btn btn-primary', id: 'policy-upload' }, 'Validate and activate');
    const revert = h('button', { type: 'button', class: 'btn btn-ghost', id: 'policy-revert' }, 'Back to default');
    const outcome = h('div', { id: 'policy-outcome', 'aria-live': 'polite' });
    file.addEventListener('change', async () => {
      if (file.files && file.files[0]) editor.value = await file.files[0].text();
      syncGutter();
    });
    compare.addEventListener('click', () => {
      clear(preview);
      if (activeSource.text === null) {
        preview.append(notice(cur && cur.version === 'default'
          ? 'The building runs the default policy, whose source the API does not serve, so there is nothing to compare with here. Its file is policies/default/' + chosenKind + '.lua.'
          : 'The active version\'s source is not available.', 'info'));
        return;
      }
      preview.append(diffView(activeSource.text, editor.value, cur ? `v${cur.version}` : 'active'));
    });
    simulate.addEventListener('click', () => busy(simulate, async () => {
      clear(simBox);
      const preview = simBox;
      if (!SIMULATED_KINDS.includes(chosenKind)) {
        preview.append(notice(`The simulation covers the ${SIMULATED_KINDS.join(', ')} policies; ${chosenKind} cannot be previewed on past bookings.`, 'info'));
        return;
      }
      if (!editor.value.trim()) {
        preview.append(h('div', { class: 'alert alert-error', role: 'alert' }, 'Paste or load the Lua source first.'));
        return;
      }
      const building = (await ctx.buildings()).find((b) => b.id === chosenBuilding);
      const today = localDate(ctx.serverNow().toISOString(), building ? building.timezone : 'UTC');
      const from = addDays(today, -60);
      const to = addDays(today, 1);
      try {
        const out = await post(`/v1/buildings/${chosenBuilding}/policies/${chosenKind}/simulate`, { source: editor.value, from, to });
        preview.append(simulationView(out, from, today, building));
      } catch (err) {
        preview.append(refusal(err));
      }
    }, 'Simulating…'));
    upload.addEventListener('click', () => busy(upload, async () => {
      clear(outcome);
      if (!editor.value.trim()) {
        outcome.append(h('div', { class: 'alert alert-error', role: 'alert' }, 'Paste or load the Lua source first.'));
        editor.focus();
        return;
      }
      try {
        const out = await api('PUT', `/v1/buildings/${chosenBuilding}/policies/${chosenKind}`,
          { body: editor.value, headers: { 'Content-Type': 'text/x-lua' } });
        toast(`${titleCase(chosenKind)} policy version ${out.version} is active`);
        outcome.append(h('div', { class: 'alert alert-success', role: 'status' },
          `Version ${out.version} is active (sha256 ${String(out.sha256 || '').slice(0, 12)}).`));
        await load();
      } catch (err) {
        outcome.append(refusal(err));
      }
    }, 'Checking…'));
    revert.addEventListener('click', () => busy(revert, async () => {
      clear(outcome);
      const sure = await confirmDialog('Go back to the default policy?',
        `${titleCase(chosenKind)} in this building stops running ${cur && cur.version !== 'default' ? `version ${cur.version}` : 'its own version'} and runs the default from now on. Past bookings keep the version that priced them; the uploaded versions stay in the history.`,
        'Back to default', { danger: true, id: 'revert-confirm' });
      if (!sure) return;
      try {
        await api('DELETE', `/v1/buildings/${chosenBuilding}/policies/${chosenKind}`);
        toast(`${titleCase(chosenKind)} is back to the default policy`);
        await load();
      } catch (err) {
        outcome.append(refusal(err));
      }
    }, 'Reverting…'));

    kindBox.append(
      h('div', { class: 'policy-grid' },
        h('div', { class: 'policy-editor' },
          h('div', { class: 'field' },
            h('label', { for: 'policy-source' }, 'New version (Lua source)'),
            h('div', { class: 'code-editor' }, gutter, editor),
            h('div', { class: 'hint', id: 'policy-source-hint' },
              'It is compiled in a fresh sandbox and its own examples run before it is swapped in. A refused version leaves the running one in place.')),
          h('div', { class: 'field' }, h('label', { for: 'policy-file' }, 'Or load a .lua file'), file),
          h('div', { class: 'button-row' }, compare, simulate, upload, ctx.canAssign && cur && cur.version !== 'default' ? revert : null),
          h('p', { class: 'hint' }, 'Compare and preview before activating: the preview runs the new version over the last 60 days of bookings beside what they were charged, and changes nothing.'),
          preview, simBox, outcome),
        h('div', { class: 'policy-history' }, h('h3', { class: 'subhead' }, 'History'), history)));
    if (!ctx.canAssign) {
      upload.disabled = true;
      file.disabled = true;
      editor.readOnly = true;
      kindBox.append(notice('Your role can read policies but not change them.', 'info'));
    }
    syncGutter();
    loadHistory(history, editor, activeSource).then(syncGutter);
  }

  async function loadHistory(box, editor, activeSource) {
    clear(box).append(loading('Loading history…'));
    const base = `/v1/buildings/${chosenBuilding}/policies/${chosenKind}`;
    let rows = null;
    let lastErr = null;
    for (const path of [`${base}/history`, `${base}/versions`, base]) {
      try {
        const out = await get(path);
        if (out && Array.isArray(out.data)) { rows = out.data; break; }
      } catch (err) {
        lastErr = err;
        if (err.status !== 404 && err.status !== 405) break;
      }
    }
    clear(box);
    if (!rows) {
      box.append(h('p', { class: 'muted' }, lastErr && (lastErr.status === 404 || lastErr.status === 405)
        ? 'Version history is not available from this server yet.'
        : `Could not load the history${lastErr ? `: ${lastErr.message}` : ''}.`));
      return;
    }
    if (!rows.length) {
      box.append(h('p', { class: 'muted' }, 'No uploaded versions: this building runs the default.'));
      return;
    }
    const activeRow = rows.find((r) => r.active);
    if (activeRow && activeRow.source) activeSource.text = activeRow.source;
    if (activeRow && activeRow.source && !editor.value) editor.value = activeRow.source;
    const list = h('ol', { class: 'history-list' });
    for (const r of rows) {
      list.append(h('li', { class: r.active ? 'active' : '' },
        h('div', {}, h('strong', {}, `Version ${r.version}`), r.active ? h('span', { class: 'badge badge-ok' }, 'Active') : null),
        h('div', { class: 'sub' }, `${r.created_at ? fmtDateTime(r.created_at, 'UTC', { weekday: false }) : ''}${r.author ? ` · ${r.author}` : ''}`),
        h('code', { class: 'sub' }, String(r.sha256 || '').slice(0, 12)),
        h('div', { class: 'button-row' },
          r.source ? h('button', { type: 'button', class: 'btn btn-ghost btn-small', onclick: () => { editor.value = r.source; editor.dispatchEvent(new Event('input')); editor.focus(); } }, 'Load into editor') : null,
          !r.active && ctx.canAssign ? restoreButton(r.version) : null)));
    }
    box.append(list);
  }

  // Makes an earlier version active again (POST .../rollback {version}).
  function restoreButton(version) {
    const b = h('button', { type: 'button', class: 'btn btn-secondary btn-small', 'data-restore': String(version) }, 'Make active');
    b.addEventListener('click', () => busy(b, async () => {
      try {
        await post(`/v1/buildings/${chosenBuilding}/policies/${chosenKind}/rollback`, { version }, newIdempotencyKey());
        toast(`${titleCase(chosenKind)} version ${version} is active again`);
        await load();
      } catch (err) {
        toast(err.message, 'error');
      }
    }, 'Activating…'));
    return b;
  }

  await load();
}

function versionBadge(v) {
  if (v === undefined || v === null) return '—';
  if (v === 'default') return h('span', { class: 'badge badge-muted' }, 'Default');
  if (v === 'file') return h('span', { class: 'badge badge-info' }, 'From disk');
  return h('span', { class: 'badge badge-ok' }, `v${v}`);
}

function refusal(err) {
  if (err.status === 404 || err.status === 405) {
    return h('div', { class: 'alert alert-info', role: 'alert' },
      `This server does not accept policy uploads over HTTP yet (${err.status}).`);
  }
  const title = err.code === 'policy_error' ? 'This version was refused; the running version stays active.' : 'The upload failed.';
  return h('div', { class: 'alert alert-error', role: 'alert', id: 'policy-error' },
    h('strong', {}, title), h('pre', { class: 'error-pre' }, err.message));
}

/** A line diff of the active source against the editor's (longest common
 *  subsequence of lines): removed lines red, added green, with a few lines
 *  of context around each change. */
function diffView(before, after, activeLabel) {
  const a = before.split('\n');
  const b = after.split('\n');
  if (a.length > DIFF_LINES_MAX || b.length > DIFF_LINES_MAX) {
    return notice(`The sources are over ${DIFF_LINES_MAX} lines; the diff is not drawn.`, 'info');
  }
  const n = a.length;
  const m = b.length;
  const lcs = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const ops = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) { ops.push([' ', a[i], i + 1, j + 1]); i++; j++; }
    else if (j < m && (i === n || lcs[i][j + 1] >= lcs[i + 1][j])) { ops.push(['+', b[j], null, j + 1]); j++; }
    else { ops.push(['-', a[i], i + 1, null]); i++; }
  }
  const changed = ops.filter((o) => o[0] !== ' ').length;
  const added = ops.filter((o) => o[0] === '+').length;
  if (!changed) return notice(`No difference: the editor holds exactly the active ${activeLabel}.`, 'info');
  const CONTEXT = 3;
  const near = ops.map((o, k) => ops.slice(Math.max(0, k - CONTEXT), k + CONTEXT + 1).some((x) => x[0] !== ' '));
  const pre = h('div', { class: 'diff', id: 'policy-diff-view', role: 'table', 'aria-label': `Changes against the active ${activeLabel}` });
  let skipped = false;
  ops.forEach((o, k) => {
    if (!near[k]) {
      if (!skipped) pre.append(h('div', { class: 'diff-skip' }, '⋯'));
      skipped = true;
      return;
    }
    skipped = false;
    const cls = o[0] === '+' ? 'diff-add' : o[0] === '-' ? 'diff-del' : 'diff-ctx';
    pre.append(h('div', { class: `diff-line ${cls}`, role: 'row' },
      h('span', { class: 'diff-no', role: 'cell' }, o[2] ? String(o[2]) : ''),
      h('span', { class: 'diff-no', role: 'cell' }, o[3] ? String(o[3]) : ''),
      h('span', { class: 'diff-sign', role: 'cell' }, o[0]),
      h('span', { class: 'diff-text', role: 'cell' }, o[1] || ' ')));
  });
  return h('div', {}, h('p', { class: 'muted small' }, `Against the active ${activeLabel}: ${added} line${added === 1 ? '' : 's'} added, ${changed - added} removed.`), pre);
}

/** The simulation's answer: totals, then the bookings whose outcome the
 *  new version changes (a different price, a refusal or an error). */
function simulationView(out, from, today, building) {
  const t = out.totals || {};
  const cur = building ? building.currency : null;
  // A booking changes when what it was paid in would cost something else
  // (credits for a credit booking, money for an invoice or card one), or
  // the new version refuses it, errs, or refunds another amount.
  const paid = (x, b) => (x ? (b.payment_method === 'credits' ? x.credits : x.money) ?? null : null);
  const diff = (out.bookings || []).filter((b) => b.refused || b.error
    || (b.candidate && b.charged && paid(b.candidate, b) !== paid(b.charged, b))
    || (b.candidate_refund !== undefined && b.candidate_refund !== b.refunded)
    || (b.candidate_refund_money !== undefined && b.candidate_refund_money !== b.refunded_money));
  const money = (v) => (v == null ? '—' : fmtMoney(v, cur));
  const rows = diff.slice(0, 50);
  return h('div', { class: 'simulation', id: 'policy-simulation' },
    h('h3', { class: 'subhead' }, `Preview on ${fmtAmount(t.bookings || 0)} bookings from ${fmtDate(from)} to ${fmtDate(today)}`),
    h('dl', { class: 'sim-totals' },
      [['Credits charged', fmtAmount(t.charged_credits)], ['With this version', fmtAmount(t.candidate_credits)],
        ['Refunded', fmtAmount(t.refunded_credits)], ['Would refund', fmtAmount(t.candidate_refund_credits)],
        ['Refused', fmtAmount(t.refused)], ['Errors', fmtAmount(t.errors)]]
        .map(([k, v]) => h('div', { class: 'sim-total' }, h('dt', {}, k), h('dd', { 'data-total': k }, v)))),
    diff.length
      ? h('table', { class: 'table sim-table' },
        h('thead', {}, h('tr', {}, ['Booking', 'Start', 'Charged', 'New version'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, rows.map((b) => h('tr', { 'data-sim': b.booking_id },
          h('td', {}, b.booking_id), h('td', {}, fmtDateTime(b.start, building ? building.timezone : 'UTC', { weekday: false })),
          h('td', {}, `${b.charged && b.charged.credits != null ? `${fmtAmount(b.charged.credits)} cr · ` : ''}${money(b.charged && b.charged.money)}`),
          h('td', {}, b.refused ? `Refused: ${b.refused}` : b.error ? `Error: ${b.error}`
            : b.candidate_refund !== undefined
              ? `Refund ${b.payment_method === 'credits' ? `${fmtAmount(b.candidate_refund)} cr` : money(b.candidate_refund_money)} (was ${b.payment_method === 'credits' ? `${fmtAmount(b.refunded)} cr` : money(b.refunded_money)})`
              : `${b.candidate && b.candidate.credits != null ? `${fmtAmount(b.candidate.credits)} cr · ` : ''}${money(b.candidate && b.candidate.money)}`)))))
      : h('p', { class: 'muted', id: 'policy-sim-same' }, 'No booking would change: every one gets the same outcome as before.'),
    diff.length > rows.length ? h('p', { class: 'muted small' }, `${diff.length - rows.length} more changed bookings are not listed.`) : null);
}
