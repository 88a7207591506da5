// Known defect 1: writing a property whose name is built at run time and
// equals "__proto__". Node (objects with a null prototype, as in Microvium):
// an ordinary property, 5. Addon 8.0.0: fatal MVM_E_NOT_IMPLEMENTED.
const R = vmImport(1);
vmExport(1, () => {
  const o = { a: 1 };
  const k = '__pro' + 'to__';
  R('write', o[k] = 5, k);
  R('read', o[k], k);
});
