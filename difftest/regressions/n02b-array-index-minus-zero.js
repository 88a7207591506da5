// New: a[-0] is a[0] in JavaScript. Node: 10. Addon 8.0.0: fatal
// MVM_E_TYPE_ERROR.
const R = vmImport(1);
vmExport(1, () => {
  const a = [10, 20];
  const z = -0;
  R('a[-0]', a[z], z);
});
