// Known defect 3: an array grown with push past 1,024 items (well under the
// 2,047-item allocation limit). Node: 1025, 1024. Addon 8.0.0: fatal
// MVM_E_ARRAY_TOO_LONG.
const R = vmImport(1);
vmExport(1, () => {
  const a = [];
  let i = 0;
  while (i < 1025) { a.push(i); i = i + 1; }
  R('length', a.length);
  R('last', a[1024]);
});
