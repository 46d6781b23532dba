/** Text on the pages, shared by the recorder and the viewer. */

/** Sets an element's text, touching the DOM only when it changes (counters update often). */
export function show(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

/** Shows a message in a page's message box, or hides the box for an empty text. */
export function showMessage(box, text, kind = 'info') {
  show(box, text);
  box.dataset.kind = kind;
  box.hidden = text === '';
}
