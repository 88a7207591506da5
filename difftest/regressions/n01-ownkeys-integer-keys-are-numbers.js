// New: Reflect.ownKeys returns integer keys as numbers. Node: "string",
// "2". Addon 8.0.0: "number", 2.
const R = vmImport(1);
vmExport(1, () => {
  const o = {};
  o[2] = 1;
  const ks = Reflect.ownKeys(o);
  R('typeof key', typeof ks[0]);
  R('key', ks[0]);
});
