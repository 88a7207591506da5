// Known defect 7 (also canonical index strings): a['0'] on an array.
// Node: 10. Addon 8.0.0: fatal MVM_E_TYPE_ERROR.
const R = vmImport(1);
vmExport(1, () => {
  const a = [10, 20];
  const k = '0';
  R("a['0']", a[k], k);
});
