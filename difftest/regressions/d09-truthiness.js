// Known defect 9: numbers outside int14 and fractions are falsy.
// Node: false, 1, 1. Addon 8.0.0: true, 0, 0.
const R = vmImport(1);
vmExport(1, () => {
  const big = 8192; const half = 0.5;
  R('!8192', !big, big);
  R('8192 ? 1 : 0', big ? 1 : 0, big);
  if (half) { R('if (0.5)', 1, half); } else { R('if (0.5)', 0, half); }
});
