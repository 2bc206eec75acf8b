// @ts-check
/** @file Handing a verified file to the person: the browser's save, and the name to save it under. */

/**
 * Saves a Blob through an `<a download>` click.
 * @param {Blob} blob @param {string} filename
 */
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.rel = 'noopener';
  a.style.display = 'none';
  document.body.appendChild(a);
  a.click();
  a.remove();
  // The save reads the Blob after the click; revoking at once can cut it short.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return url;
}

/** The last part of a served name (names may have folders): what to save it as. @param {string} name */
export function baseName(name) {
  return name.split('/').pop() || 'download';
}
