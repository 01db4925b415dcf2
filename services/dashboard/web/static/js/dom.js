// dom.js — tiny DOM helpers shared by the view modules. Text is always set
// through textContent: server and user data never goes through innerHTML.

/**
 * el creates an element.
 * @param {string} tag tag name
 * @param {{className?: string, text?: string, attrs?: Record<string, string|number|boolean|null|undefined>}} [opts]
 *   attrs: attribute values; true sets an empty attribute, false/null/undefined leaves it out
 * @param {...(Node|string|null|undefined|false)} children appended in order (strings as text)
 * @returns {HTMLElement}
 */
export function el(tag, opts = {}, ...children) {
  const node = document.createElement(tag);
  if (opts.className) node.className = opts.className;
  if (opts.text !== undefined) node.textContent = opts.text;
  for (const [name, value] of Object.entries(opts.attrs ?? {})) {
    if (value === false || value === null || value === undefined) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child);
  }
  return node;
}

/**
 * setText sets node.textContent only when it changed, so unchanged text
 * nodes (and a selection inside them) are left alone.
 * @param {Node} node
 * @param {string} text
 */
export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/**
 * setAttr sets (or, for null, removes) an attribute only when it changed.
 * @param {Element} node
 * @param {string} name
 * @param {string|null} value
 */
export function setAttr(node, name, value) {
  if (value === null) {
    if (node.hasAttribute(name)) node.removeAttribute(name);
  } else if (node.getAttribute(name) !== value) {
    node.setAttribute(name, value);
  }
}

/**
 * show toggles the hidden attribute.
 * @param {HTMLElement} node
 * @param {boolean} visible
 */
export function show(node, visible) {
  if (node.hidden === visible) node.hidden = !visible;
}

/**
 * byId returns the element with id, or throws: the page's markup is part of
 * the app, a missing element is a bug.
 * @param {string} id
 * @returns {HTMLElement}
 */
export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`dashboard: #${id} is missing from the page`);
  return node;
}
