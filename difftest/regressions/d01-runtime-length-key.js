// Known defect 1: a property name built at run time that equals "length"
// breaks property lookup. Node: 3, 3. Addon 8.0.0: undefined, undefined.
const R = vmImport(1);
vmExport(1, () => {
  const o = {};
  const k = 'len' + 'gth';
  o[k] = 3;
  R('first read', o[k], k);
  R('second read', o[k], k);
});
