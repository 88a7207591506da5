// Known defect 4: a zero-length Uint8Array corrupts the heap; the harness
// runs a full GC between export 1 and export 2. Node: 0, 0. Addon 8.0.0:
// MVM_E_INVALID_BYTECODE from the collection.
const R = vmImport(1);
let u;
vmExport(1, () => {
  u = Microvium.newUint8Array(0);
  R('length', u.length);
});
vmExport(2, () => {
  R('length after GC', u.length);
});
