// Known defect 6: -0 === 0 is false. Node: true, "zero". Addon 8.0.0:
// false, "other".
const R = vmImport(1);
vmExport(1, () => {
  const z = -0;
  R('-0 === 0', z === 0, z);
  let s = 'other';
  switch (z) { case 0: s = 'zero'; break; default: break; }
  R('switch (-0) case 0', s, z);
});
