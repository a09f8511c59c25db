// Small DOM helpers shared by the views: element building without innerHTML,
// clipboard copy with a fallback, and the few inline SVG icons the console uses.

const SVG_NS = 'http://www.w3.org/2000/svg';

/** Finds an element by id; a missing one is a bug in index.html, so it throws. */
export function byId(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`missing element #${id}`);
  return element;
}

/**
 * Builds an element: h('td', {class: 'num', dataset: {id: 3}}, 'text', child).
 * Attributes named on* are refused: handlers are added with addEventListener.
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  applyAttributes(element, attributes);
  append(element, children);
  return element;
}

/** The same for SVG elements. */
export function s(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  applyAttributes(element, attributes);
  append(element, children);
  return element;
}

function applyAttributes(element, attributes) {
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) throw new Error(`use addEventListener, not ${name}`);
    if (name === 'dataset') {
      for (const [key, item] of Object.entries(value)) element.dataset[key] = String(item);
    } else if (name === 'text') {
      element.textContent = String(value);
    } else {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
}

function append(element, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
}

/** Removes every child of an element. */
export function clear(element) {
  element.replaceChildren();
}

/** Copies text to the clipboard; falls back to a hidden textarea where the API is missing or refused. */
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // Permission refused (a headless browser, an unfocused page): try the old way.
    }
  }
  const area = h('textarea', { class: 'offscreen', 'aria-hidden': 'true', readonly: true });
  area.value = text;
  document.body.append(area);
  area.select();
  let copied = false;
  try {
    copied = document.execCommand('copy');
  } catch {
    copied = false;
  }
  area.remove();
  return copied;
}

const ICON_PATHS = {
  copy: 'M9 9h10v12H9z M5 15V3h10',
  republish: 'M4 12a8 8 0 0 1 14-5.3 M18 3v4h-4 M20 12a8 8 0 0 1-14 5.3 M6 21v-4h4',
};

/** A 16-pixel stroke icon; decorative, so hidden from assistive technology. */
export function icon(name) {
  return s('svg', { class: 'icon', viewBox: '0 0 24 24', width: 16, height: 16, 'aria-hidden': 'true', focusable: 'false' },
    s('path', { d: ICON_PATHS[name] }));
}

/** A button with an icon and a visible label. */
export function iconButton(iconName, label, attributes = {}) {
  return h('button', { type: 'button', class: 'small', ...attributes }, icon(iconName), h('span', { text: label }));
}

/** Shows a short-lived confirmation on a button ("Copied"), then restores its label. */
export function flashLabel(button, text, milliseconds = 1200) {
  const label = button.querySelector('span') ?? button;
  const before = label.textContent;
  label.textContent = text;
  setTimeout(() => { label.textContent = before; }, milliseconds);
}
