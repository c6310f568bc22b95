// tenant.js - what the tenant screens share: whose wallet is shown (a
// member sees their own; a company admin picks a person of the company) and
// the company's time zone for dates.
import { h, select } from '../ui.js';

const picked = { userId: '' };

/** The people a tenant principal may act for, and a picker for admins.
 *  Returns {userId, users, el} where el is null for a member. */
export async function person(ctx, onChange) {
  if (ctx.me.role === 'tenant_user') {
    return { userId: ctx.me.user_id, users: [], el: null };
  }
  const users = await ctx.users(ctx.me.tenant_id);
  if (!picked.userId || !users.some((u) => u.id === picked.userId)) picked.userId = users[0] ? users[0].id : '';
  const sel = select(users.map((u) => ({ value: u.id, label: `${u.name} · ${u.email}` })), { value: picked.userId, id: 'person' });
  sel.addEventListener('change', () => {
    picked.userId = sel.value;
    onChange(sel.value);
  });
  const el = h('div', { class: 'filter' }, h('label', { for: 'person', class: 'filter-label' }, 'Person'), sel);
  return { userId: picked.userId, users, el };
}

/** The zone the company's dates are read in: its first building's. */
export async function companyZone(ctx) {
  const buildings = await ctx.buildings();
  return buildings[0] ? buildings[0].timezone : 'UTC';
}
