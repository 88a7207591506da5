// Known defect 7: a numeric-looking string key. Node: 1, 1. Addon 8.0.0:
// fatal MVM_E_TYPE_ERROR at the first write.
const R = vmImport(1);
vmExport(1, () => {
  const o = {};
  const k = '01';
  R("o['01'] = 1", o[k] = 1, k);
  R("o['01']", o[k], k);
});
