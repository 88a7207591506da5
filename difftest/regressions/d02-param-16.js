// Known defect 2: reading the 16th parameter. Node: 16. Addon 8.0.0: fatal
// MVM_E_NOT_IMPLEMENTED.
const R = vmImport(1);
function f(p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, p12, p13, p14, p15, p16) { return p16; }
vmExport(1, () => {
  R('16th parameter', f(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16));
});
