// The groups tab: the collection's consumer groups (position, acknowledged floor, lag, members,
// in flight, parked), with Redeliver and Discard of the parked events and Delete of a group
// (which asks once more on the same button before it deletes).

import { byId, h, clear } from './dom.js';
import { api } from './api.js';
import { formatNumber, plural } from './format.js';

const CONFIRM_MS = 4000;

export class GroupsView {
  constructor(ctx) {
    this.ctx = ctx;
    this.rows = byId('groups-rows');
    this.result = byId('groups-result');
    this.groups = [];
    byId('groups-refresh').addEventListener('click', () => this.load());
  }

  show() { this.load(); }

  refreshTimes() {}

  async load() {
    const name = this.ctx.store.state.collection;
    if (!name) return;
    if (!(await this.ctx.ensureKnown(name))) {
      this.groups = [];
      this.render(`${name} does not exist yet.`);
      return;
    }
    this.ctx.log.http('GET', `…/${name}/groups`);
    try {
      this.groups = await api.groups(name);
      this.render();
    } catch (error) {
      this.groups = [];
      this.render(`Could not list the groups: ${error.describe()}`);
    }
  }

  render(message) {
    clear(this.rows);
    if (message || this.groups.length === 0) {
      const text = message ?? 'No consumer groups. A Join on the protocol port makes one.';
      this.rows.append(h('tr', { class: 'empty-row' }, h('td', { colspan: 9, text })));
      return;
    }
    for (const group of this.groups) {
      const parked = group.parkedEvents.map((event) => event.id).join(', ') + (group.parked > group.parkedEvents.length ? ', …' : '');
      this.rows.append(h('tr', { dataset: { testid: 'group-row', name: group.name } },
        h('td', { class: 'mono nowrap', text: group.name }),
        h('td', { class: 'mono', text: group.tag ?? 'every event' }),
        h('td', { class: 'num', text: formatNumber(group.ackedFloor) }),
        h('td', { class: 'num', text: formatNumber(group.position) }),
        h('td', { class: 'num', dataset: { testid: 'group-lag' }, text: formatNumber(group.lag) }),
        h('td', { class: 'num', dataset: { testid: 'group-members' }, text: formatNumber(group.members) }),
        h('td', { class: 'num', text: `${formatNumber(group.inFlight)} / ${formatNumber(group.waiting)}` }),
        h('td', { class: 'num', dataset: { testid: 'group-parked' }, title: parked, text: formatNumber(group.parked) }),
        h('td', { class: 'actions' },
          this.button('Redeliver', 'group-redeliver', group, group.parked === 0, () => this.change(group, 'redeliver')),
          this.button('Discard', 'group-discard', group, group.parked === 0, () => this.change(group, 'discard')),
          this.button('Delete', 'group-delete', group, false, (button) => this.remove(group, button)))));
    }
  }

  button(label, testid, group, disabled, action) {
    const button = h('button', { type: 'button', dataset: { testid, name: group.name }, text: label });
    button.disabled = disabled;
    button.addEventListener('click', () => action(button));
    return button;
  }

  async change(group, what) {
    const name = this.ctx.store.state.collection;
    this.ctx.log.http('POST', `…/${name}/groups/${group.name}/${what}`);
    this.ctx.log.note(`${what === 'redeliver' ? 'Redeliver' : 'Discard'} of parked events has no protocol equivalent`);
    try {
      const answer = await api.changeParked(name, group.name, what);
      const count = answer.redelivered ?? answer.discarded ?? 0;
      this.say(`${group.name}: ${plural(count, 'parked event')} ${what === 'redeliver' ? 'redelivered' : 'discarded'}`, 'ok');
    } catch (error) {
      this.say(`Could not ${what}: ${error.describe()}`, 'error');
    }
    await this.load();
  }

  async remove(group, button) {
    if (button.dataset.armed !== 'true') {
      button.dataset.armed = 'true';
      button.textContent = 'Confirm delete';
      setTimeout(() => { button.dataset.armed = 'false'; button.textContent = 'Delete'; }, CONFIRM_MS);
      return;
    }
    const name = this.ctx.store.state.collection;
    this.ctx.log.http('DELETE', `…/${name}/groups/${group.name}`);
    try {
      await api.deleteGroup(name, group.name);
      this.say(`${group.name} deleted; its members' streams ended`, 'ok');
    } catch (error) {
      this.say(`Could not delete ${group.name}: ${error.describe()}`, 'error');
    }
    await this.load();
  }

  say(text, kind) {
    this.result.className = `result ${kind}`;
    this.result.textContent = text;
  }
}
