// app.js - sign-in, the app shell and the hash router.
//
// GET /v1/me tells the role. Operator roles (super_admin, manager, viewer)
// get the operator screens; tenant roles (tenant_admin, tenant_user) get the
// wallet screens. A tenant key is never offered an operator screen: the
// routes are not in its table, and typing one in the address bar lands on
// the wallet (the API would refuse the data anyway).
import { api, getKey, setKey, clearKey, get, getAll, setUnauthorizedHandler } from './api.js';
import { h, clear, errorBox, loading, toast } from './ui.js';
import * as dashboard from './views/dashboard.js';
import * as datahub from './views/datahub.js';
import * as assign from './views/assign.js';
import * as resources from './views/resources.js';
import * as policies from './views/policies.js';
import * as wallet from './views/wallet.js';
import * as bookings from './views/bookings.js';
import * as checkout from './views/checkout.js';
import * as company from './views/company.js';

const OPERATOR_ROLES = ['super_admin', 'manager', 'viewer'];
const TENANT_ROLES = ['tenant_admin', 'tenant_user'];
const ROLE_LABEL = {
  super_admin: 'Super admin', manager: 'Manager', viewer: 'Viewer',
  tenant_admin: 'Company admin', tenant_user: 'Member',
};

const OPERATOR_NAV = [
  { path: 'dashboard', label: 'Dashboard', icon: '▦', view: dashboard, params: { tab: 'credits' } },
  { path: 'dashboard/usage', label: 'Usage', icon: '≡', view: dashboard, params: { tab: 'usage' }, hidden: true },
  { path: 'datahub', label: 'Data Hub', icon: '◔', view: datahub },
  { path: 'assign', label: 'Assign credits', short: 'Assign', icon: '+', view: assign, roles: ['super_admin', 'manager'] },
  { path: 'resources', label: 'Resources', icon: '⌂', view: resources },
  { path: 'policies', label: 'Policies', icon: '{}', view: policies },
];

const TENANT_NAV = [
  { path: 'wallet', label: 'Wallet', icon: '◎', view: wallet },
  { path: 'book', label: 'Book a space', short: 'Book', icon: '+', view: checkout },
  { path: 'bookings', label: 'Bookings', icon: '≡', view: bookings },
  { path: 'company', label: 'Company usage', short: 'Company', icon: '▦', view: company, roles: ['tenant_admin'] },
];

const root = document.getElementById('app');
let ctx = null;

/** What every screen gets: who is signed in and cached reference data. */
function makeContext(me) {
  const isOperator = OPERATOR_ROLES.includes(me.role);
  const cache = new Map();
  const once = (k, load) => {
    if (!cache.has(k)) cache.set(k, load().catch((e) => { cache.delete(k); throw e; }));
    return cache.get(k);
  };
  const signedInAt = Date.now();
  return {
    me,
    isOperator,
    // The server's clock (GET /v1/me answers it; a test clock may differ
    // from this machine's), moved on by the time since sign-in.
    serverNow: () => new Date((me.now ? Date.parse(me.now) : signedInAt) + (Date.now() - signedInAt)),
    canAssign: me.role === 'super_admin' || me.role === 'manager',
    buildings: () => once('buildings', () => getAll('/v1/buildings')),
    tenants: () => once('tenants', () => getAll('/v1/tenants')),
    resources: (buildingId) => once(`resources:${buildingId || ''}`, () => getAll('/v1/resources', { building_id: buildingId })),
    users: (tenantId) => once(`users:${tenantId || ''}`, () => getAll('/v1/users', { tenant_id: tenantId })),
    allocations: (tenantId) => once(`allocations:${tenantId || ''}`, () => getAll('/v1/allocations', { tenant_id: tenantId })),
    forget: (prefix) => { for (const k of [...cache.keys()]) if (k.startsWith(prefix)) cache.delete(k); },
    async buildingMap() {
      const list = await this.buildings();
      return new Map(list.map((b) => [b.id, b]));
    },
    navigate: (path) => { window.location.hash = `#/${path}`; },
  };
}

function navFor(me) {
  const list = OPERATOR_ROLES.includes(me.role) ? OPERATOR_NAV : TENANT_ROLES.includes(me.role) ? TENANT_NAV : [];
  return list.filter((r) => !r.roles || r.roles.includes(me.role));
}

// ---------- sign in ----------

function renderSignIn(message) {
  document.title = 'Sign in · Allot';
  clear(root);
  const input = h('input', {
    id: 'api-key', name: 'api-key', type: 'password', autocomplete: 'off', spellcheck: 'false',
    required: true, placeholder: 'allot_…', 'aria-describedby': 'api-key-hint', 'data-field': 'key',
  });
  const show = h('button', { type: 'button', class: 'btn btn-ghost btn-small', 'aria-pressed': 'false' }, 'Show');
  show.addEventListener('click', () => {
    const on = input.type === 'password';
    input.type = on ? 'text' : 'password';
    show.textContent = on ? 'Hide' : 'Show';
    show.setAttribute('aria-pressed', String(on));
  });
  const err = h('div', { class: 'field-error', id: 'sign-in-error', role: 'alert', hidden: !message }, message || '');
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, 'Sign in');
  const form = h('form', { class: 'signin-form', novalidate: true },
    h('div', { class: 'field' },
      h('label', { for: 'api-key' }, 'API key'),
      h('div', { class: 'input-row' }, input, show),
      h('div', { class: 'hint', id: 'api-key-hint' },
        'Paste the key your administrator gave you. It is kept in this browser tab only and forgotten when you close it.'),
      err),
    submit);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const key = input.value.trim();
    err.hidden = true;
    input.removeAttribute('aria-invalid');
    if (!key) {
      err.textContent = 'Enter your API key.';
      err.hidden = false;
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = 'Signing in…';
    try {
      const me = await api('GET', '/v1/me', { key });
      setKey(key);
      start(me);
    } catch (ex) {
      err.textContent = ex.status === 401
        ? 'This API key was not accepted. Check that you pasted all of it.'
        : ex.message;
      err.hidden = false;
      input.setAttribute('aria-invalid', 'true');
      input.focus();
    } finally {
      submit.disabled = false;
      submit.textContent = 'Sign in';
    }
  });
  root.append(h('div', { class: 'signin' },
    h('div', { class: 'signin-card' },
      h('div', { class: 'brand brand-large' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, 'A'), 'Allot'),
      h('h1', { class: 'signin-title' }, 'Sign in'),
      h('p', { class: 'signin-sub' }, 'Booking credits for your workspace: balances, bookings and reports.'),
      form)));
  input.focus();
}

function signOut(message) {
  clearKey();
  ctx = null;
  if (window.location.hash !== '#/sign-in') history.replaceState(null, '', '#/sign-in');
  renderSignIn(message);
}

// ---------- shell ----------

function renderShell(me) {
  clear(root);
  const nav = h('nav', { class: 'sidenav', 'aria-label': 'Main' });
  const list = h('ul', {});
  const shown = navFor(me).filter((r) => !r.hidden);
  // On a phone the bar holds the first PHONE_TABS screens; the rest sit in
  // a "More" menu, so no screen is hidden off the edge without a hint.
  const PHONE_TABS = 3;
  const more = [];
  shown.forEach((r, i) => {
    const extra = shown.length > PHONE_TABS + 1 && i >= PHONE_TABS;
    // A short label (shown on a phone only) keeps the bar inside the screen.
    list.append(h('li', { class: extra ? 'nav-extra' : null }, h('a', { href: `#/${r.path}`, class: 'nav-link', 'data-path': r.path, 'aria-label': r.short ? r.label : null },
      h('span', { class: 'nav-icon', 'aria-hidden': 'true' }, r.icon), h('span', { class: r.short ? 'nav-label has-short' : 'nav-label' }, r.label),
      r.short ? h('span', { class: 'nav-short', 'aria-hidden': 'true' }, r.short) : null)));
    if (extra) more.push(r);
  });
  if (more.length) {
    const menu = h('div', { class: 'nav-more-menu', id: 'nav-more-menu', hidden: true, role: 'menu' },
      more.map((r) => h('a', { href: `#/${r.path}`, class: 'nav-more-link', role: 'menuitem', 'data-path': r.path }, r.label)));
    const btn = h('button', { type: 'button', class: 'nav-link nav-more', id: 'nav-more', 'aria-expanded': 'false',
      'aria-controls': 'nav-more-menu', 'aria-haspopup': 'menu' }, h('span', { class: 'nav-more-label' }, 'More'), h('span', { 'aria-hidden': 'true' }, ' ▾'));
    const setOpen = (open) => {
      menu.hidden = !open;
      btn.setAttribute('aria-expanded', String(open));
    };
    btn.addEventListener('click', (e) => { e.stopPropagation(); setOpen(menu.hidden); });
    menu.addEventListener('click', () => setOpen(false));
    document.addEventListener('click', (e) => { if (!menu.contains(e.target)) setOpen(false); });
    document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && !menu.hidden) { setOpen(false); btn.focus(); } });
    list.append(h('li', { class: 'nav-more-item' }, btn));
    nav.append(list, menu);
  } else {
    nav.append(list);
  }
  const who = me.role === 'tenant_user' || me.role === 'tenant_admin' ? (me.company || '') : 'Operator';
  const header = h('header', { class: 'topbar' },
    h('a', { class: 'brand', href: `#/${navFor(me)[0].path}` },
      h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, 'A'), 'Allot'),
    h('div', { class: 'topbar-right' },
      h('span', { class: 'who', id: 'who' }, h('span', { class: 'who-name' }, me.displayName || who),
        h('span', { class: `role-chip role-${me.role}` }, ROLE_LABEL[me.role] || me.role)),
      h('button', { type: 'button', class: 'btn btn-ghost btn-small', id: 'sign-out', onclick: () => signOut() }, 'Sign out')));
  const main = h('main', { id: 'main', class: 'main', tabindex: '-1' });
  root.append(header, h('div', { class: 'layout' }, nav, main));
}

function highlightNav(path) {
  // The "More" button is highlighted when one of its screens is open, and
  // says which one to a screen reader; the menu marks it.
  const moreBtn = document.getElementById('nav-more');
  if (moreBtn) {
    const inMore = [...document.querySelectorAll('.nav-more-link')].find((a) => path === a.dataset.path || path.startsWith(`${a.dataset.path}/`));
    moreBtn.classList.toggle('more-active', !!inMore);
    moreBtn.setAttribute('aria-label', inMore ? `More screens (${inMore.textContent} is open)` : 'More screens');
    for (const a of document.querySelectorAll('.nav-more-link')) {
      if (a === inMore) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
  }
  for (const a of document.querySelectorAll('.nav-link[data-path]')) {
    const p = a.dataset.path;
    const on = path === p || path.startsWith(`${p}/`);
    a.classList.toggle('active', on);
    if (on) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
    // On a very narrow phone the row may scroll: keep the page's tab in view.
    const row = a.closest('ul');
    if (on && row && row.scrollWidth > row.clientWidth) row.scrollLeft = Math.max(0, a.offsetLeft - 12);
  }
}

let renderSeq = 0;

async function route() {
  if (!ctx) return;
  const routes = navFor(ctx.me);
  const raw = (window.location.hash || '').replace(/^#\/?/, '');
  const [path, qs] = raw.split('?');
  let r = routes.find((x) => x.path === path);
  if (!r) {
    const all = [...OPERATOR_NAV, ...TENANT_NAV];
    if (path && all.some((x) => x.path === path)) {
      toast('That page is not available with your role.', 'error');
    }
    history.replaceState(null, '', `#/${routes[0].path}`);
    r = routes[0];
  }
  highlightNav(r.path);
  const main = document.getElementById('main');
  const seq = ++renderSeq;
  clear(main).append(loading());
  document.title = `${r.label} · Allot`;
  const params = { ...(r.params || {}), ...Object.fromEntries(new URLSearchParams(qs || '')) };
  try {
    const page = h('div', { class: 'page' });
    await r.view.render(page, ctx, params);
    if (seq !== renderSeq) return; // a later navigation won
    clear(main).append(page);
    const title = main.querySelector('.page-title');
    if (title && document.activeElement === document.body) title.focus({ preventScroll: true });
  } catch (err) {
    if (seq !== renderSeq) return;
    clear(main).append(errorBox(err, route));
  }
}

async function start(me) {
  // A friendlier name for the header: the person's or the company's.
  try {
    if (me.user_id) {
      const u = await get(`/v1/users/${me.user_id}`);
      me.displayName = u.name;
    }
    if (me.tenant_id) {
      const t = await get(`/v1/tenants/${me.tenant_id}`);
      me.company = t.name;
      if (!me.displayName) me.displayName = t.name;
    }
  } catch (e) { /* the header falls back to the role */ }
  ctx = makeContext(me);
  if (!navFor(me).length) {
    signOut('This key has a role the dashboard does not know.');
    return;
  }
  renderShell(me);
  route();
}

async function boot() {
  setUnauthorizedHandler(() => signOut('Your session ended: the API key is no longer accepted. Sign in again.'));
  // The skip link must not change the hash (the router owns it).
  document.querySelector('.skip-link').addEventListener('click', (e) => {
    e.preventDefault();
    const target = document.getElementById('main') || document.getElementById('api-key');
    if (target) target.focus();
  });
  window.addEventListener('hashchange', route);
  const key = getKey();
  if (!key) {
    renderSignIn();
    return;
  }
  clear(root).append(loading('Signing in…'));
  try {
    start(await get('/v1/me'));
  } catch (err) {
    if (err.status === 401) return; // the handler signed out
    clear(root).append(h('div', { class: 'signin' }, h('div', { class: 'signin-card' }, errorBox(err, boot))));
  }
}

boot();
