// Types for the vendored UMD bundle, so tsc does not check minified code.
// Imported as an ES module for its side effect: it sets `globalThis.hashwasm`
// (see web/lib/sha256.js).
export {};
