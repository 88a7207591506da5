// Known defect 12: Reflect.ownKeys order. Node: '1' (integer-like keys
// first, ascending), then 'b'. Addon 8.0.0: 'b' first (insertion order).
const R = vmImport(1);
vmExport(1, () => {
  const o = {};
  o.b = 1;
  o[1] = 2;
  const ks = Reflect.ownKeys(o);
  R('count', ks.length);
  R('key 0', '' + ks[0]);
  R('key 1', '' + ks[1]);
});
